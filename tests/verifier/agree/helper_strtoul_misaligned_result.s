# bpf_strtoul's result must be an aligned 8-byte slot.
# type: xdp
# privileged: reject needs an 8-byte aligned pointer
# unprivileged: reject needs an 8-byte aligned pointer
    stdw [%r10-8], 0x3234
    mov %r1, %r10
    add %r1, -8
    mov %r2, 2
    mov %r3, 0
    mov %r4, %r10
    add %r4, -20
    call 106
    mov %r0, 2
    exit
