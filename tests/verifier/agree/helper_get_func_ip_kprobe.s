# bpf_get_func_ip(ctx) in a kprobe.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    call 173
    mov %r0, 0
    exit
