# bpf_current_task_under_cgroup from XDP.
# type: xdp
# map: cgroup_array key=4 value=4 entries=4
# privileged: accept
# unprivileged: accept
    lddw %r1, map_fd 0
    mov %r2, 0
    call 37
    mov %r0, 2
    exit
