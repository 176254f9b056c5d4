# A socket filter reading skb->napi_id, a field duet's userspace VM does not provide.
# type: socket_filter
# kernel: accept
# why: the kernel gives socket filters more __sk_buff fields than duet's userspace VM fills (len through hash, as BPF_PROG_TEST_RUN sets them); duet rejects reads of the others rather than return made-up values
# expect: does not provide the __sk_buff field at offset 84
    ldxw %r0, [%r1+84]
    mov %r0, 0
    exit
