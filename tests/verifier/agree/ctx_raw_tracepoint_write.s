# A raw tracepoint writes args[0].
# type: raw_tracepoint
# privileged: reject read-only
# unprivileged: reject need CAP_PERFMON
    stdw [%r1+0], 1
    mov %r0, 0
    exit
