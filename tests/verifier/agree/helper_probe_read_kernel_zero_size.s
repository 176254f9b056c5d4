# bpf_probe_read_kernel into the stack with size 0.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    mov %r1, %r10
    add %r1, -8
    mov %r2, 0
    mov %r3, 0
    call 113
    mov %r0, 0
    exit
