# A variable-offset stack write over bytes never written.
# type: xdp
# privileged: accept
# unprivileged: reject may leave
    ldxw %r3, [%r1+16]
    and %r3, 7
    mov %r2, %r10
    add %r2, -16
    add %r2, %r3
    stb [%r2+0], 1
    ldxb %r0, [%r10-16]
    and %r0, 3
    exit
