# bpf_loop from a socket filter.
# type: socket_filter
# kernel-raw: missing btf func_info
# privileged: accept
# unprivileged: accept
    stdw [%r10-8], 0
    mov %r1, 10
    lddw %r2, func 7
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-8]
    exit
    mov %r0, 0
    exit
