# bpf_get_current_comm fills a 16-byte stack buffer in a raw tracepoint, which is then read.
# type: raw_tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r1, %r10
    add %r1, -16
    mov %r2, 16
    call 16
    ldxdw %r0, [%r10-16]
    ldxdw %r1, [%r10-8]
    add %r0, %r1
    exit
