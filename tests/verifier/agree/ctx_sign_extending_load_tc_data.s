# A sign-extending load of `__sk_buff.data` (offset 76) in a classifier: refused, as for XDP.
# type: tc
# privileged: reject sign-extending 4-byte load of
# unprivileged: reject sign-extending 4-byte load of
    ldxsw %r2, [%r1+76]
    mov %r0, 0
    exit
