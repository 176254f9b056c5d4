# Reading the packet with no bounds check at all.
# type: xdp
# expect: no bounds check covers this pointer
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    ldxb %r0, [%r2+0]
    and %r0, 3
    exit
