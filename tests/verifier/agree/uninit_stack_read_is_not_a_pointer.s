# An uninitialised stack read is a number, never a pointer: dereferencing it is refused.
# type: xdp
# privileged: reject not a pointer
# unprivileged: reject which was never written
    ldxdw %r2, [%r10-8]
    ldxb %r0, [%r2+0]
    mov %r0, 2
    exit
