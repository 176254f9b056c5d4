# Writing a field of struct xdp_md.
# type: xdp
# expect: the context is read-only for XDP programs
    stw [%r1+0], 0
    mov %r0, 2
    exit
