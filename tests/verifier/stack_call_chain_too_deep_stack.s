# Two functions using 320 bytes of stack each, one calling the other.
# type: xdp
# expect: the limit for a whole chain is 512
    stdw [%r10-320], 0
    call local func
    mov %r0, 2
    exit
func:
    stdw [%r10-320], 0
    mov %r0, 0
    exit
