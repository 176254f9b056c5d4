# Two stack pointers compared with each other: privileged only.
# type: xdp
# privileged: accept
# unprivileged: reject pointer-comparison
    mov %r1, %r10
    add %r1, -8
    mov %r2, %r10
    add %r2, -16
    jeq %r1, %r2, out
out:
    mov %r0, 2
    exit
