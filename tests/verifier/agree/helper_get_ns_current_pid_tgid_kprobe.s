# bpf_get_ns_current_pid_tgid from a kprobe.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r1, 0
    mov %r2, 0
    mov %r3, %r10
    add %r3, -8
    mov %r4, 8
    call 120
    ldxw %r0, [%r10-4]
    mov %r0, 0
    exit
