# A bpf_loop callback that returns 1 (stop) after five calls.
# type: xdp
# kernel-raw: missing btf func_info
# privileged: accept
# unprivileged: accept
    stdw [%r10-8], 0
    mov %r1, 100
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
    jlt %r3, 5, ret
    mov %r0, 1
ret:
    exit
