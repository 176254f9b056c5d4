# bpf_probe_read_kernel with a size read from pt_regs, unbounded.
# type: kprobe
# privileged: reject may be negative
# unprivileged: reject need CAP_PERFMON
    ldxdw %r2, [%r1+104]
    mov %r1, %r10
    add %r1, -16
    mov %r3, 0
    call 113
    mov %r0, 0
    exit
