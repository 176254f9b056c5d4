# bpf_strtol with an empty buffer.
# type: xdp
# privileged: reject may be zero
# unprivileged: reject may be zero
    stdw [%r10-8], 0x3234
    mov %r1, %r10
    add %r1, -8
    mov %r2, 0
    mov %r3, 0
    mov %r4, %r10
    add %r4, -16
    call 105
    mov %r0, 2
    exit
