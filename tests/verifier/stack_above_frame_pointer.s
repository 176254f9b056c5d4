# Writing above the frame pointer.
# type: xdp
# expect: outside the 512-byte frame
    stdw [%r10+0], 0
    mov %r0, 2
    exit
