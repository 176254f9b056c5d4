# A socket filter reading skb->mark, a field duet's userspace VM does not provide.
# type: socket_filter
# kernel: accept
# why: the kernel gives socket filters many __sk_buff fields; duet's userspace VM fills only len and protocol, so duet rejects reads of the others rather than return made-up values
# expect: provides only `len` (offset 0) and `protocol` (offset 16)
    ldxw %r0, [%r1+8]
    mov %r0, 0
    exit
