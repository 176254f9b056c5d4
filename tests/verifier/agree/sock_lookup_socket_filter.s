# bpf_sk_lookup_tcp from a socket filter, which the kernel does not give it.
# type: socket_filter
# privileged: reject not available to socket filter
# unprivileged: reject not available to socket filter
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
    mov %r1, %r0
    call 86
out:
    mov %r0, 0
    exit
