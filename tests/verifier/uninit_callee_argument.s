# A function reading an argument its caller did not pass.
# type: xdp
# expect: the caller did not pass argument 2
    mov %r1, 1
    call local func
    mov %r0, 2
    exit
func:
    mov %r0, %r2
    exit
