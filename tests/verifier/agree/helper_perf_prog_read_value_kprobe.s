# bpf_perf_prog_read_value is for perf_event programs only.
# type: kprobe
# privileged: reject not available to kprobe
# unprivileged: reject need CAP_PERFMON
    mov %r2, %r10
    add %r2, -24
    mov %r3, 24
    call 56
    ldxdw %r0, [%r10-24]
    mov %r0, 0
    exit
