# A misaligned 4-byte stack write.
# type: xdp
# expect: misaligned 4-byte stack write
    stw [%r10-6], 0
    mov %r0, 2
    exit
