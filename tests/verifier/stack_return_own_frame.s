# A function returning a pointer to its own stack.
# type: xdp
# expect: returns a pointer to its own stack
    call local func
    ldxdw %r0, [%r0+0]
    mov %r0, 2
    exit
func:
    stdw [%r10-8], 0
    mov %r0, %r10
    add %r0, -8
    exit
