# A context pointer moved and moved back is the context pointer again: reading it is fine.
# type: xdp
# privileged: accept
# unprivileged: accept
    add %r1, 4
    sub %r1, 4
    ldxw %r0, [%r1+4]
    mov %r0, 2
    exit
