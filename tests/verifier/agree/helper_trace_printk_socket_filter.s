# bpf_trace_printk with one argument from a socket filter: CAP_PERFMON only, in every program type.
# type: socket_filter
# privileged: accept
# unprivileged: reject bpf_trace_printk needs CAP_PERFMON
    stdw [%r10-8], 0x0a6425
    mov %r1, %r10
    add %r1, -8
    mov %r2, 4
    mov %r3, 7
    call 6
    mov %r0, 0
    exit
