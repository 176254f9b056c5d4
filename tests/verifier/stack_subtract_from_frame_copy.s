# Subtracting from a copy of the frame pointer (`r1 = r10; r1 -= 8`), which the kernel prohibits.
# type: xdp
# expect: subtraction from R1, a stack pointer
# expect: r1 += -8
    mov %r1, %r10
    sub %r1, 8
    stdw [%r1+0], 0
    mov %r0, 2
    exit
