# The program returns R0 left unset by the function it called last.
# type: xdp
# privileged: reject R0 is read, but the function called at insn 1 returned without setting it
# unprivileged: reject R0 is read, but the function called at insn 1 returned without setting it
    mov %r0, 2
    call local f
    exit
f:
    mov %r2, 1
    exit
