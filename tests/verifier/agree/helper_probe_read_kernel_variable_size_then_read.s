# bpf_probe_read_kernel of a variable size may leave bytes unwritten; reading them is allowed to root.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxdw %r2, [%r1+104]
    and %r2, 15
    mov %r1, %r10
    add %r1, -16
    mov %r3, 0
    call 113
    ldxdw %r0, [%r10-8]
    exit
