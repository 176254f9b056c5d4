# A raw tracepoint reads args[11].
# type: raw_tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxdw %r0, [%r1+88]
    exit
