# Reading the context at a variable offset.
# type: xdp
# expect: with a variable offset
    ldxw %r2, [%r1+12]
    and %r2, 4
    add %r1, %r2
    ldxw %r0, [%r1+0]
    mov %r0, 2
    exit
