# Using r1 after a helper call clobbered it.
# type: xdp
# expect: the call at insn 0 clobbered it
    call 5
    ldxw %r0, [%r1+0]
    mov %r0, 2
    exit
