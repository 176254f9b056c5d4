# bpf_get_func_ip is for kprobes (of duet's program types), not tracepoints.
# type: tracepoint
# privileged: reject not available to tracepoint
# unprivileged: reject need CAP_PERFMON
    call 173
    mov %r0, 0
    exit
