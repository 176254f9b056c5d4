# bpf_trace_vprintk from XDP: CAP_PERFMON only.
# type: xdp
# privileged: accept
# unprivileged: reject needs CAP_PERFMON
    stdw [%r10-8], 0x0a6968
    mov %r1, %r10
    add %r1, -8
    mov %r2, 4
    mov %r3, 0
    mov %r4, 0
    call 177
    mov %r0, 2
    exit
