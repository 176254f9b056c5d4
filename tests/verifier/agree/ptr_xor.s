# Bitwise operations on a pointer are refused even to root.
# type: xdp
# privileged: reject bitwise xor on R0
# unprivileged: reject bitwise xor on R0
    mov %r0, %r1
    xor %r0, 1
    and %r0, 3
    exit
