# bpf_strtoul from a kprobe.
# type: kprobe
# privileged: accept
# unprivileged: reject kprobe programs need CAP_PERFMON
    stdw [%r10-8], 0x3234
    mov %r1, %r10
    add %r1, -8
    mov %r2, 2
    mov %r3, 0
    mov %r4, %r10
    add %r4, -16
    call 106
    ldxdw %r0, [%r10-16]
    exit
