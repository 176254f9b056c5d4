# bpf_get_stack told a 64-byte buffer at fp-32 is 64 bytes long.
# type: kprobe
# privileged: reject stack
# unprivileged: reject kprobe programs need CAP_PERFMON
    mov %r2, %r10
    add %r2, -32
    mov %r3, 64
    mov %r4, 0
    call 67
    mov %r0, 0
    exit
