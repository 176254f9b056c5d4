# 32-bit arithmetic on a pointer.
# type: xdp
# expect: 32-bit arithmetic on R1
    add32 %r1, 4
    mov %r0, 2
    exit
