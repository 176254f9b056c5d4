# A socket filter calling bpf_skb_store_bytes, which only TC classifiers may.
# type: socket_filter
# kernel: reject
# expect: bpf_skb_store_bytes is not available to socket filter programs
    stw [%r10-4], 0
    mov %r3, %r10
    add %r3, -4
    mov %r2, 0
    mov %r4, 4
    mov %r5, 0
    call 9
    mov %r0, 0
    exit
