# A sign-extending load of `__sk_buff.len`, a number: accepted.
# type: tc
# privileged: accept
# unprivileged: accept
    ldxsw %r2, [%r1+0]
    mov %r0, 1
    exit
