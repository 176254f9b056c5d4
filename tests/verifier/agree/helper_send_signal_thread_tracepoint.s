# bpf_send_signal_thread from a tracepoint.
# type: tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r1, 9
    call 117
    mov %r0, 0
    exit
