# A socket filter returning -5.
# type: socket_filter
# privileged: accept
# unprivileged: accept
    mov %r0, -5
    exit
