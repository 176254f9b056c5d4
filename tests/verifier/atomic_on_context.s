# An atomic add on the context.
# type: xdp
# expect: atomic operations are not allowed on the context pointer
    mov %r2, 1
    lock add32 [%r1+16], %r2
    mov %r0, 2
    exit
