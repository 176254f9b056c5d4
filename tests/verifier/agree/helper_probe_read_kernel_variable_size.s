# bpf_probe_read_kernel with a size masked to 0..15 into a 16-byte buffer.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxdw %r2, [%r1+104]
    and %r2, 15
    mov %r1, %r10
    add %r1, -16
    mov %r3, 0
    call 113
    mov %r0, 0
    exit
