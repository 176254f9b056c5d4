# Reading past the end of struct xdp_md.
# type: xdp
# expect: struct xdp_md has no field at offset 24
    ldxw %r0, [%r1+24]
    mov %r0, 2
    exit
