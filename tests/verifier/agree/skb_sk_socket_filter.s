# __sk_buff.sk in a socket filter.
# type: socket_filter
# privileged: accept
# unprivileged: accept
    ldxdw %r2, [%r1+168]
    jeq %r2, 0, out
    ldxw %r3, [%r2+4]
out:
    mov %r0, 0
    exit
