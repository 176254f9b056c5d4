# A tracepoint reads at offset 8192.
# type: tracepoint
# privileged: reject limit
# unprivileged: reject need CAP_PERFMON
    ldxdw %r0, [%r1+8192]
    exit
