# A 32-bit shift by a constant is tracked by the kernel (zero-extended, at most 2^32 >> 3), so
# the branch past 2^32 is dead and its read of r8 never checked.
# type: xdp
# privileged: accept
# unprivileged: accept
    ldxw %r2, [%r1+12]
    rsh32 %r2, 3
    lddw %r3, 0x100000000
    jlt %r2, %r3, +1
    mov %r0, %r8
    mov %r0, 2
    exit
