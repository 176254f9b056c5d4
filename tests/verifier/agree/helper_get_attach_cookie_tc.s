# bpf_get_attach_cookie is for the tracing program types.
# type: tc
# privileged: reject not available to TC
# unprivileged: reject not available to TC
    call 174
    mov %r0, 0
    exit
