# bpf_get_current_uid_gid from a xdp program.
# type: xdp
# privileged: accept
# unprivileged: accept
    call 15
    mov %r0, 1
    exit
