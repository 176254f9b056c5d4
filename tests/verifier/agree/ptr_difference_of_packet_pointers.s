# The packet length as data_end - data.
# type: xdp
# privileged: accept
# unprivileged: reject pointer -= pointer is prohibited
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    sub %r3, %r2
    mov %r0, %r3
    and %r0, 3
    exit
