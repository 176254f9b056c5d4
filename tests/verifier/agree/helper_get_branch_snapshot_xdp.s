# bpf_get_branch_snapshot from XDP: CAP_PERFMON only.
# type: xdp
# privileged: accept
# unprivileged: reject bpf_get_branch_snapshot needs CAP_PERFMON
    mov %r1, %r10
    add %r1, -48
    mov %r2, 48
    mov %r3, 0
    call 176
    ldxdw %r0, [%r10-48]
    mov %r0, 2
    exit
