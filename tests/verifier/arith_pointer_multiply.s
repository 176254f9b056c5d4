# Multiplying a pointer.
# type: xdp
# expect: multiplication on R1
    mul %r1, 2
    mov %r0, 2
    exit
