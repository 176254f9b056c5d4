# A kprobe reading past the end of struct pt_regs.
# type: kprobe
# expect: runs past the end of struct pt_regs (168 bytes)
    ldxdw %r0, [%r1+168]
    mov %r0, 0
    exit
