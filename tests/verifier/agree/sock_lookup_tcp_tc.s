# bpf_sk_lookup_tcp in a TC classifier: NULL-checked, fields read, released.
# type: tc
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
    call 84
    jeq %r0, 0, out
    ldxw %r7, [%r0+4]
    ldxw %r8, [%r0+72]
    ldxh %r9, [%r0+48]
    mov %r1, %r0
    call 86
out:
    mov %r0, 0
    exit
