# bpf_send_signal from XDP: every program type may call it, a loader with CAP_PERFMON only.
# type: xdp
# privileged: accept
# unprivileged: reject bpf_send_signal needs CAP_PERFMON
    mov %r1, 9
    call 109
    mov %r0, 2
    exit
