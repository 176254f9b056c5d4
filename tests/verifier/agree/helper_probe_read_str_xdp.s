# bpf_probe_read_str is for tracing programs only (XDP has bpf_probe_read_kernel_str).
# type: xdp
# privileged: reject not available to XDP
# unprivileged: reject not available to XDP
    mov %r1, %r10
    add %r1, -16
    mov %r2, 16
    mov %r3, 0
    call 45
    ldxdw %r0, [%r10-16]
    mov %r0, 2
    exit
