# bpf_strtol parses "42" into a never-written 8-byte stack slot, which is then read.
# type: xdp
# privileged: accept
# unprivileged: accept
    stdw [%r10-8], 0x3234
    mov %r1, %r10
    add %r1, -8
    mov %r2, 2
    mov %r3, 0
    mov %r4, %r10
    add %r4, -16
    call 105
    ldxdw %r0, [%r10-16]
    exit
