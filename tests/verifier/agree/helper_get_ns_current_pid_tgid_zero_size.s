# bpf_get_ns_current_pid_tgid with a zero-sized buffer.
# type: xdp
# privileged: reject may be zero
# unprivileged: reject may be zero
    mov %r1, 0
    mov %r2, 0
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 120
    mov %r0, 2
    exit
