# bpf_send_signal given a stack pointer as the signal number.
# type: xdp
# privileged: accept
# unprivileged: reject bpf_send_signal needs CAP_PERFMON
    mov %r1, %r10
    call 109
    mov %r0, 2
    exit
