# __sk_buff.sk is a pointer: a 4-byte read of it is refused.
# type: tc
# privileged: reject 4-byte read of struct __sk_buff.sk
# unprivileged: reject 4-byte read of struct __sk_buff.sk
    ldxw %r2, [%r1+168]
    mov %r0, 0
    exit
