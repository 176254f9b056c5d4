# A sign-extending load from a kprobe's context (pt_regs, plain memory): accepted.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxsw %r2, [%r1+0]
    mov %r0, 0
    exit
