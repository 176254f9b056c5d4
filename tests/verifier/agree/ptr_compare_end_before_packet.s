# data_end compared with a packet pointer, the end first: allowed to every loader.
# type: xdp
# privileged: accept
# unprivileged: accept
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    jgt %r3, %r2, out
out:
    mov %r0, 2
    exit
