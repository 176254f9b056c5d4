# bpf_get_ns_current_pid_tgid with a buffer running past the frame.
# type: xdp
# privileged: reject fp
# unprivileged: reject fp
    mov %r1, 0
    mov %r2, 0
    mov %r3, %r10
    add %r3, -8
    mov %r4, 16
    call 120
    mov %r0, 2
    exit
