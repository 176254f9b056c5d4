# bpf_probe_read_kernel from a socket_filter program.
# type: socket_filter
# privileged: accept
# unprivileged: reject bpf_probe_read_kernel needs CAP_PERFMON
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    mov %r3, 0
    call 113
    mov %r0, 1
    exit
