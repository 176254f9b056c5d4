# Dividing by the constant zero.
# type: xdp
# expect: division by the constant zero
    mov %r0, 10
    div %r0, 0
    mov %r0, 2
    exit
