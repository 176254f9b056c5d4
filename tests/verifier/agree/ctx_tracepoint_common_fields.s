# A tracepoint reads its record's first 4 bytes (common_type).
# type: tracepoint
# privileged: reject first 8 bytes
# unprivileged: reject need CAP_PERFMON
    ldxw %r0, [%r1+0]
    exit
