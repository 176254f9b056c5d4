# bpf_trace_printk("hi\n") from XDP: the kernel gives the helper only to a loader with CAP_PERFMON.
# type: xdp
# privileged: accept
# unprivileged: reject bpf_trace_printk needs CAP_PERFMON
    stdw [%r10-8], 0x0a6968
    mov %r1, %r10
    add %r1, -8
    mov %r2, 4
    call 6
    mov %r0, 2
    exit
