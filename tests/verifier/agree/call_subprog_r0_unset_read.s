# The caller reads R0 after a call to a function that exited without setting it.
# type: xdp
# privileged: reject R0 is read, but the function called at insn 0 returned without setting it
# unprivileged: reject R0 is read, but the function called at insn 0 returned without setting it
    call local f
    add %r0, 1
    and %r0, 3
    exit
f:
    mov %r1, 1
    exit
