# A read past struct bpf_tcp_sock.
# type: tc
# privileged: reject invalid tcp_sock access
# unprivileged: reject invalid tcp_sock access
    mov %r9, %r1
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r2, %r10
    add %r2, -16
    mov %r3, 12
    mov %r4, -1
    mov %r5, 0
    call 84
    jeq %r0, 0, out
    mov %r6, %r0
    mov %r1, %r0
    call 96
    jeq %r0, 0, rel
    ldxw %r7, [%r0+112]
rel:
    mov %r1, %r6
    call 86
out:
    mov %r0, 0
    exit
