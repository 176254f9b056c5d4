# A bpf_loop callback reading above the caller's frame through its context pointer.
# type: xdp
# kernel-raw: missing btf func_info
# privileged: reject outside the 512-byte frame
# unprivileged: reject outside the 512-byte frame
    stdw [%r10-8], 0
    mov %r1, 10
    lddw %r2, func 7
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-8]
    exit
    ldxdw %r3, [%r2+8]
    mov %r0, 0
    exit
