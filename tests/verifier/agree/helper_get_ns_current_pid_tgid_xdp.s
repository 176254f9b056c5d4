# bpf_get_ns_current_pid_tgid fills a struct bpf_pidns_info on the stack, read after (any program type, any loader).
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r1, 0
    mov %r2, 0
    mov %r3, %r10
    add %r3, -8
    mov %r4, 8
    call 120
    ldxw %r0, [%r10-4]
    mov %r0, 2
    exit
