# A variable-offset stack write over bytes never written.
# (Without CAP_PERFMON the kernel already refuses the variable offset on the stack pointer.)
# type: xdp
# privileged: accept
# unprivileged: reject stack pointer with a variable offset
    ldxw %r3, [%r1+16]
    and %r3, 7
    mov %r2, %r10
    add %r2, -16
    add %r2, %r3
    stb [%r2+0], 1
    ldxb %r0, [%r10-16]
    and %r0, 3
    exit
