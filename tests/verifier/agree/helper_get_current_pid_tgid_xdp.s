# bpf_get_current_pid_tgid from a xdp program.
# type: xdp
# privileged: accept
# unprivileged: accept
    call 14
    mov %r0, 1
    exit
