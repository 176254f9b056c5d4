# Writing r10, the read-only frame pointer.
# type: xdp
# expect: r10 is the read-only frame pointer
    mov %r10, 0
    mov %r0, 2
    exit
