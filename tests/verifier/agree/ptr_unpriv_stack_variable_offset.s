# A stack pointer plus a bounded register, then a read of initialised bytes: without CAP_PERFMON the kernel keeps stack offsets constant.
# type: xdp
# privileged: accept
# unprivileged: reject stack pointer with a variable offset
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    ldxw %r3, [%r1+16]
    and %r3, 7
    mov %r2, %r10
    add %r2, -16
    add %r2, %r3
    ldxb %r0, [%r2+0]
    and %r0, 3
    exit
