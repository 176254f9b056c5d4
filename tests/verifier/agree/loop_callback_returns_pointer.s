# A bpf_loop callback returning its context pointer.
# type: xdp
# kernel-raw: missing btf func_info
# privileged: reject should have been in [0, 1]
# unprivileged: reject should have been in [0, 1]
    stdw [%r10-8], 0
    mov %r1, 10
    lddw %r2, func 7
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-8]
    exit
    mov %r0, %r2
    exit
