# bpf_get_stack of 64 bytes of kernel stack into the stack, then read, from a raw tracepoint.
# type: raw_tracepoint
# privileged: accept
# unprivileged: reject raw tracepoint programs need CAP_PERFMON
    mov %r2, %r10
    add %r2, -64
    mov %r3, 64
    mov %r4, 0
    call 67
    ldxdw %r0, [%r10-64]
    exit
