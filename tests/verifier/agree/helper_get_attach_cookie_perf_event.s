# bpf_get_attach_cookie(ctx) in a perf_event program.
# type: perf_event
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    call 174
    mov %r0, 0
    exit
