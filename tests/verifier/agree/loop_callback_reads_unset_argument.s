# A bpf_loop callback gets only the index (r1) and the context (r2).
# type: xdp
# kernel-raw: missing btf func_info
# privileged: reject R3 is read before it is written
# unprivileged: reject R3 is read before it is written
    stdw [%r10-8], 0
    mov %r1, 10
    lddw %r2, func 7
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-8]
    exit
    mov %r0, %r3
    and %r0, 1
    exit
