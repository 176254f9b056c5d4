# A tracepoint reads one byte at offset 9.
# type: tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxb %r0, [%r1+9]
    exit
