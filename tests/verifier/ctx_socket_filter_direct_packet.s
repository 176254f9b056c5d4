# A socket filter reading skb->data: socket filters have no direct packet access.
# type: socket_filter
# kernel: reject
# expect: have no direct packet access
    ldxw %r2, [%r1+76]
    mov %r0, 0
    exit
