# Reading a register that was never written.
# type: xdp
# expect: R2 is read before it is written
    mov %r0, %r2
    and %r0, 3
    exit
