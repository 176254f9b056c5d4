# A tracepoint reads an 8-byte field at offset 8.
# type: tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxdw %r0, [%r1+8]
    exit
