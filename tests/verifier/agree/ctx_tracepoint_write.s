# A tracepoint writes its record.
# type: tracepoint
# privileged: reject read-only
# unprivileged: reject need CAP_PERFMON
    stdw [%r1+8], 0
    mov %r0, 0
    exit
