# Reading half of a pointer spilled to the stack.
# type: xdp
# expect: read of part of a pointer spilled
    stxdw [%r10-8], %r1
    ldxw %r0, [%r10-8]
    and %r0, 3
    exit
