# bpf_perf_event_read of a perf event array from a kprobe.
# type: kprobe
# map: perf_event_array key=4 value=4 entries=4
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    lddw %r1, map_fd 0
    mov %r2, 0
    call 22
    mov %r0, 0
    exit
