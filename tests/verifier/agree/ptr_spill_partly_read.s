# Reading half of a spilled pointer is refused even to root.
# type: xdp
# privileged: reject read of part of a pointer spilled
# unprivileged: reject read of part of a pointer spilled
    stxdw [%r10-8], %r1
    ldxw %r0, [%r10-8]
    and %r0, 3
    exit
