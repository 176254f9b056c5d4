# bpf_get_current_comm from a socket_filter program.
# type: socket_filter
# privileged: accept
# unprivileged: reject bpf_get_current_comm needs CAP_PERFMON
    mov %r1, %r10
    add %r1, -16
    mov %r2, 16
    call 16
    mov %r0, 1
    exit
