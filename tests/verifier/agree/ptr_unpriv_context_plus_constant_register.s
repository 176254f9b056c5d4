# The context pointer plus a register holding 4, never used: refused without CAP_PERFMON.
# type: xdp
# privileged: accept
# unprivileged: reject an unprivileged loader may add registers only to stack and map value pointers
    mov %r3, 4
    add %r1, %r3
    mov %r0, 2
    exit
