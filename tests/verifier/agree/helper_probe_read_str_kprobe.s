# bpf_probe_read_str into a stack buffer, read after.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r1, %r10
    add %r1, -16
    mov %r2, 16
    mov %r3, 0
    call 45
    ldxdw %r0, [%r10-16]
    mov %r0, 0
    exit
