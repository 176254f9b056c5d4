# bpf_perf_event_read on a hash map.
# type: kprobe
# map: hash key=4 value=4 entries=4
# privileged: reject cannot be used with map
# unprivileged: reject need CAP_PERFMON
    lddw %r1, map_fd 0
    mov %r2, 0
    call 22
    mov %r0, 0
    exit
