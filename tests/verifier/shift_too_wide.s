# Shifting a 64-bit value by 64.
# type: xdp
# expect: shift by 64 on a 64-bit value
    mov %r0, 1
    lsh %r0, 64
    mov %r0, 2
    exit
