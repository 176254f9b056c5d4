# bpf_probe_read_user_str from a perf_event program into a 32-byte buffer.
# type: perf_event
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r3, 0
    mov %r1, %r10
    add %r1, -32
    mov %r2, 32
    call 114
    exit
