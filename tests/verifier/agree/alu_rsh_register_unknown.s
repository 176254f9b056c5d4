# A shift by a register: the result is an unknown 64-bit number to the kernel, even of a 32-bit
# shift, so the branch past 2^32 is explored and its read of r8 refused.
# type: xdp
# privileged: reject R8 is read before
# unprivileged: reject R8 is read before
    ldxw %r2, [%r1+12]
    ldxw %r4, [%r1+16]
    and %r4, 7
    rsh32 %r2, %r4
    lddw %r3, 0x100000000
    jlt %r2, %r3, +1
    mov %r0, %r8
    mov %r0, 2
    exit
