# bpf_sk_lookup_tcp with the tuple read from the packet (the helper may read it).
# type: tc
# privileged: accept
# unprivileged: accept
    mov %r6, %r1
    ldxw %r2, [%r6+76]
    ldxw %r3, [%r6+80]
    mov %r4, %r2
    add %r4, 46
    jgt %r4, %r3, out
    add %r2, 26
    mov %r1, %r6
    mov %r3, 12
    mov %r4, -1
    mov %r5, 0
    call 84
    jeq %r0, 0, out
    mov %r1, %r0
    call 86
out:
    mov %r0, 0
    exit
