# bpf_probe_read_kernel(NULL, 0, src): the destination is not nullable.
# type: kprobe
# privileged: reject expects
# unprivileged: reject need CAP_PERFMON
    mov %r1, 0
    mov %r2, 0
    mov %r3, 0
    call 113
    mov %r0, 0
    exit
