# bpf_perf_prog_read_value in a perf_event program, the buffer read after.
# type: perf_event
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r2, %r10
    add %r2, -24
    mov %r3, 24
    call 56
    ldxdw %r0, [%r10-24]
    mov %r0, 0
    exit
