# Spilling a pointer with a 4-byte store is refused even to root.
# type: xdp
# privileged: reject only whole 8-byte spills keep pointers intact
# unprivileged: reject only whole 8-byte spills keep pointers intact
    stxw [%r10-8], %r1
    mov %r0, 2
    exit
