# `ctx == 0`: the kernel does not count the context as known non-NULL, so the NULL branch (reading uninitialised registers here) is verified too.
# type: tc
# privileged: reject R8 is read before it is written
# unprivileged: reject comparing the context pointer with zero
    mov %r9, %r1
    jeq %r9, 0, bad
    mov %r0, 0
    exit
bad:
    ldxdw %r0, [%r10-64]
    ldxdw %r0, [%r8+0]
    mov %r0, 0
    exit
