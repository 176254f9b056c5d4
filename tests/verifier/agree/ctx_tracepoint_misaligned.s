# A tracepoint reads 4 bytes at offset 10.
# type: tracepoint
# privileged: reject misaligned
# unprivileged: reject need CAP_PERFMON
    ldxw %r0, [%r1+10]
    exit
