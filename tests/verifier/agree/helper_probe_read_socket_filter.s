# bpf_probe_read from a socket_filter program.
# type: socket_filter
# privileged: reject bpf_probe_read is not available
# unprivileged: reject bpf_probe_read is not available
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    mov %r3, 0
    call 4
    mov %r0, 1
    exit
