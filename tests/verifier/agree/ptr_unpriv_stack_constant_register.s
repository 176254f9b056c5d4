# The frame pointer plus a register holding -8: stack pointers may add registers without CAP_PERFMON.
# type: xdp
# privileged: accept
# unprivileged: accept
    stdw [%r10-8], 0
    mov %r3, -8
    mov %r2, %r10
    add %r2, %r3
    ldxb %r0, [%r2+0]
    and %r0, 3
    exit
