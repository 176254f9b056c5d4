# A function sets R0 on one path only; the caller reads it: refused on the other path.
# type: xdp
# privileged: reject R0 is read, but the function called at insn 2 returned without setting it
# unprivileged: reject R0 is read, but the function called at insn 2 returned without setting it
    ldxw %r2, [%r1+0]
    ldxw %r1, [%r1+4]
    call local f
    exit
f:
    jgt %r2, %r1, out
    mov %r0, 1
out:
    exit
