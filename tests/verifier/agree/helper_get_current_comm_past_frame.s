# bpf_get_current_comm told the 16-byte buffer at fp-8 is 16 bytes long.
# type: kprobe
# privileged: reject stack
# unprivileged: reject need CAP_PERFMON
    mov %r1, %r10
    add %r1, -8
    mov %r2, 16
    call 16
    mov %r0, 0
    exit
