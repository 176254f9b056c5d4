# A raw tracepoint reads args[12].
# type: raw_tracepoint
# privileged: reject 12 u64
# unprivileged: reject need CAP_PERFMON
    ldxdw %r0, [%r1+96]
    exit
