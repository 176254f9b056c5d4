# bpf_ktime_get_tai_ns from a raw tracepoint.
# type: raw_tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    call 208
    mov %r0, 0
    exit
