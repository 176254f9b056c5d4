# A kprobe writing a register of struct pt_regs.
# type: kprobe
# expect: the context is read-only for kprobe programs
    stdw [%r1+0], 0
    mov %r0, 0
    exit
