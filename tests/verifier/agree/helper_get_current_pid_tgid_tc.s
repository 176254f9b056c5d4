# bpf_get_current_pid_tgid from a tc program.
# type: tc
# privileged: accept
# unprivileged: accept
    call 14
    mov %r0, 1
    exit
