# A 2-byte read of a 4-byte xdp_md field.
# type: xdp
# expect: 2-byte read of struct xdp_md.data
    ldxh %r0, [%r1+0]
    mov %r0, 2
    exit
