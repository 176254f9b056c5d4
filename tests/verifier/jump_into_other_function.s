# A jump from the main program into a function's body.
# type: xdp
# expect: leaves its function
    mov %r0, 2
    call local func
    ja inside
    exit
func:
    mov %r0, 0
inside:
    exit
