# bpf_get_branch_snapshot into an unwritten stack buffer, read after.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r1, %r10
    add %r1, -48
    mov %r2, 48
    mov %r3, 0
    call 176
    ldxdw %r0, [%r10-48]
    mov %r0, 0
    exit
