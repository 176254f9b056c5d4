# bpf_sk_fullsock's result read after the socket it came from was released.
# type: tc
# privileged: reject already released
# unprivileged: reject already released
    mov %r9, %r1
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r2, %r10
    add %r2, -16
    mov %r3, 12
    mov %r4, -1
    mov %r5, 0
    call 99
    jeq %r0, 0, out
    mov %r6, %r0
    mov %r1, %r0
    call 95
    jeq %r0, 0, rel
    mov %r7, %r0
    mov %r1, %r6
    call 86
    ldxw %r0, [%r7+4]
    mov %r0, 0
    exit
rel:
    mov %r1, %r6
    call 86
out:
    mov %r0, 0
    exit
