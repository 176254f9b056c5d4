# Reading packet metadata without checking it against data.
# type: xdp
# expect: packet metadata read
    ldxw %r2, [%r1+8]          # data_meta
    ldxw %r0, [%r2+0]
    and %r0, 3
    exit
