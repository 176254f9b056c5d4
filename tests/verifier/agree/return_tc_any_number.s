# A TC classifier returning 1000.
# type: tc
# privileged: accept
# unprivileged: accept
    mov %r0, 1000
    exit
