# A raw tracepoint reads the upper half of args[0].
# type: raw_tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxw %r0, [%r1+4]
    exit
