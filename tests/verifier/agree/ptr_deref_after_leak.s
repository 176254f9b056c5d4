# A pointer that became a number (a 32-bit copy) cannot be dereferenced.
# type: xdp
# privileged: reject not a pointer
# unprivileged: reject copying part of it
    mov32 %r2, %r1
    ldxw %r0, [%r2+0]
    mov %r0, 2
    exit
