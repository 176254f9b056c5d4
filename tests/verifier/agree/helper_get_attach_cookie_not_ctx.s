# bpf_get_attach_cookie given a stack pointer instead of the context.
# type: raw_tracepoint
# privileged: reject unmodified context pointer
# unprivileged: reject need CAP_PERFMON
    mov %r1, %r10
    add %r1, -8
    call 174
    mov %r0, 0
    exit
