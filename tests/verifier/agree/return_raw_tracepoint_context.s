# A raw tracepoint returns its context pointer: a privileged loader may return an address.
# type: raw_tracepoint
# privileged: accept
# unprivileged: reject raw tracepoint programs need CAP_PERFMON
    mov %r0, %r1
    exit
