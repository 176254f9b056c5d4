# bpf_get_current_pid_tgid from a socket_filter program.
# type: socket_filter
# privileged: accept
# unprivileged: accept
    call 14
    mov %r0, 1
    exit
