# `data == 0`: neither is a packet pointer; the NULL branch is verified.
# type: tc
# privileged: reject R8 is read before it is written
# unprivileged: reject comparing a packet pointer with zero
    mov %r9, %r1
    ldxw %r6, [%r9+76]
    jeq %r6, 0, bad
    mov %r0, 0
    exit
bad:
    ldxdw %r0, [%r10-64]
    ldxdw %r0, [%r8+0]
    mov %r0, 0
    exit
