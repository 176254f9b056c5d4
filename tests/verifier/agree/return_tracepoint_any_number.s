# A tracepoint returns 7: the kernel checks no range for tracepoints.
# type: tracepoint
# privileged: accept
# unprivileged: reject tracepoint programs need CAP_PERFMON
    mov %r0, 7
    exit
