# A function calling itself.
# type: xdp
# expect: recursive call
    call local func
    mov %r0, 2
    exit
func:
    call local func
    mov %r0, 0
    exit
