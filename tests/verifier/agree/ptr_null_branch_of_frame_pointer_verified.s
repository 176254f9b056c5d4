# `r10 == 0`: the frame pointer is not known non-NULL to the kernel either; the NULL branch is verified.
# type: tc
# privileged: reject R8 is read before it is written
# unprivileged: reject comparing a stack pointer with zero
    mov %r9, %r1
    jeq %r10, 0, bad
    mov %r0, 0
    exit
bad:
    ldxdw %r0, [%r10-64]
    ldxdw %r0, [%r8+0]
    mov %r0, 0
    exit
