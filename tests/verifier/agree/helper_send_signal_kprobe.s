# bpf_send_signal(SIGKILL) from a kprobe.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r1, 9
    call 109
    mov %r0, 0
    exit
