# Overwriting one byte of a spilled pointer; the slot then reads as a number.
# type: xdp
# privileged: accept
# unprivileged: reject overwrites part of a pointer spilled
    stxdw [%r10-8], %r1
    stb [%r10-8], 0
    ldxdw %r0, [%r10-8]
    and %r0, 3
    exit
