# Subtracting from data_end.
# type: xdp
# expect: subtraction on R3
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    sub %r3, 4
    mov %r0, 2
    exit
