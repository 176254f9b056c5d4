# bpf_loop with a callback that counts in a context on the caller's stack (the callback was once reported as unreachable code).
# type: xdp
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
    ldxdw %r3, [%r2+0]
    add %r3, 1
    stxdw [%r2+0], %r3
    mov %r0, 0
    exit
