# A function storing a pointer to its own stack into its caller's stack.
# type: xdp
# expect: storing a pointer to a called function's stack into its caller's stack
    stdw [%r10-8], 0
    mov %r1, %r10
    add %r1, -8
    call local func
    mov %r0, 2
    exit
func:
    stdw [%r10-8], 0
    mov %r2, %r10
    add %r2, -8
    stxdw [%r1+0], %r2
    mov %r0, 0
    exit
