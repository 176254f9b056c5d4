# Subtracting two stack pointers: a known distance to root, refused without CAP_PERFMON.
# type: xdp
# privileged: accept
# unprivileged: reject pointer -= pointer is prohibited
    mov %r2, %r10
    add %r2, -16
    mov %r0, %r10
    sub %r0, %r2
    and %r0, 3
    exit
