# A socket filter writing skb->len.
# type: socket_filter
# expect: the context is read-only for socket filter programs
    stw [%r1+0], 0
    mov %r0, 0
    exit
