# bpf_current_task_under_cgroup with a cgroup array, from a kprobe.
# type: kprobe
# map: cgroup_array key=4 value=4 entries=4
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    lddw %r1, map_fd 0
    mov %r2, 0
    call 37
    mov %r0, 0
    exit
