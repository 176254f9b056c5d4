# A tracepoint reads the last 8 bytes below 8192.
# type: tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxdw %r0, [%r1+8184]
    exit
