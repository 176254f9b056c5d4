# Building a map key pointer by subtracting a register from the frame pointer's copy.
# type: xdp
# map: hash key=4 value=8 entries=16
# expect: subtraction from R2, a stack pointer
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r3, 4
    mov %r2, %r10
    sub %r2, %r3
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
