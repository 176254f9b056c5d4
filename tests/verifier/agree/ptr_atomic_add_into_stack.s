# An atomic add of the context pointer into a stack slot.
# type: xdp
# privileged: accept
# unprivileged: reject atomic operation with R1
    stdw [%r10-8], 0
    lock add [%r10-8], %r1
    ldxdw %r0, [%r10-8]
    and %r0, 3
    exit
