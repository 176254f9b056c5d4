# bpf_sk_lookup_udp in XDP: the addresses and ports read, then released.
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r6, %r1
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -16
    mov %r3, 12
    mov %r4, -1
    mov %r5, 0
    call 85
    jne %r0, 0, found
    mov %r0, 2
    exit
found:
    ldxw %r7, [%r0+24]
    ldxw %r8, [%r0+52]
    ldxw %r9, [%r0+44]
    ldxb %r7, [%r0+49]
    ldxh %r8, [%r0+60]
    mov %r1, %r0
    call 86
    mov %r0, 2
    exit
