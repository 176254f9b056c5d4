# bpf_probe_read of a user pointer from pt_regs into the stack, then read back.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxdw %r3, [%r1+112]
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    call 4
    ldxdw %r0, [%r10-8]
    exit
