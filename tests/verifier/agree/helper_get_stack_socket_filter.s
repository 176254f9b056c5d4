# bpf_get_stack from a socket filter.
# type: socket_filter
# privileged: reject bpf_get_stack is not available
# unprivileged: reject bpf_get_stack is not available
    mov %r2, %r10
    add %r2, -64
    mov %r3, 64
    mov %r4, 0
    call 67
    mov %r0, 0
    exit
