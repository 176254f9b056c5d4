# __sk_buff.sk cannot be offset.
# type: tc
# privileged: reject addition on R2, which is a socket
# unprivileged: reject addition on R2, which is a socket
    ldxdw %r2, [%r1+168]
    jeq %r2, 0, out
    add %r2, 4
    ldxw %r3, [%r2+0]
out:
    mov %r0, 0
    exit
