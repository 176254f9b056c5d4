# A packet pointer plus a register holding the constant 14: refused without CAP_PERFMON, which masks only stack and map value offsets.
# type: xdp
# privileged: accept
# unprivileged: reject an unprivileged loader may add registers only to stack and map value pointers
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r5, 14
    add %r2, %r5
    mov %r4, %r2
    add %r4, 1
    jgt %r4, %r3, out
    ldxb %r0, [%r2+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
