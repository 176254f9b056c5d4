# 32-bit addition to the context pointer: refused even to root.
# type: xdp
# privileged: reject 32-bit arithmetic on R0
# unprivileged: reject 32-bit arithmetic on R0
    mov %r0, %r1
    add32 %r0, 1
    and %r0, 3
    exit
