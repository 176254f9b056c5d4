# Writing below the 512-byte stack frame.
# type: xdp
# expect: outside the 512-byte frame
    stdw [%r10-520], 0
    mov %r0, 2
    exit
