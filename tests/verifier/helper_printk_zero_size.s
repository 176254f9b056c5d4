# bpf_trace_printk with a format size that may be zero.
# type: xdp
# expect: may be zero
    stdw [%r10-8], 0
    mov %r1, %r10
    add %r1, -8
    ldxw %r2, [%r1+0]
    and %r2, 7
    call 6
    mov %r0, 2
    exit
