# bpf_perf_event_read_value from TC: CAP_PERFMON only.
# type: tc
# map: perf_event_array key=4 value=4 entries=4
# privileged: accept
# unprivileged: reject bpf_perf_event_read_value needs CAP_PERFMON
    lddw %r1, map_fd 0
    mov %r2, 0
    mov %r3, %r10
    add %r3, -24
    mov %r4, 24
    call 55
    ldxdw %r0, [%r10-8]
    mov %r0, 0
    exit
