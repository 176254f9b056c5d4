# bpf_perf_event_read_value with a zero-sized buffer.
# type: kprobe
# map: perf_event_array key=4 value=4 entries=4
# privileged: reject may be zero
# unprivileged: reject need CAP_PERFMON
    lddw %r1, map_fd 0
    mov %r2, 0
    mov %r3, %r10
    add %r3, -24
    mov %r4, 0
    call 55
    mov %r0, 0
    exit
