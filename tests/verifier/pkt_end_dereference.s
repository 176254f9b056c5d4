# Reading through data_end, the first byte after the packet.
# type: xdp
# expect: which is data_end
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    ldxb %r0, [%r3+0]
    and %r0, 3
    exit
