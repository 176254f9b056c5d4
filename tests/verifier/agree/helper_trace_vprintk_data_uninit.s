# bpf_trace_vprintk with 8 bytes of never-written data.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    stdw [%r10-8], 0x0a6425
    mov %r1, %r10
    add %r1, -8
    mov %r2, 4
    mov %r3, %r10
    add %r3, -16
    mov %r4, 8
    call 177
    mov %r0, 0
    exit
