# __sk_buff.sk may be NULL: read before the check.
# type: tc
# privileged: reject may be NULL
# unprivileged: reject may be NULL
    ldxdw %r2, [%r1+168]
    ldxw %r3, [%r2+4]
    mov %r0, 0
    exit
