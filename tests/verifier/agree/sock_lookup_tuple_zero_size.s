# bpf_sk_lookup_tcp with a tuple size of zero: the kernel accepts it (the lookup finds nothing).
# type: tc
# privileged: accept
# unprivileged: accept
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r2, %r10
    add %r2, -16
    mov %r3, 0
    mov %r4, -1
    mov %r5, 0
    call 84
    jeq %r0, 0, out
    mov %r1, %r0
    call 86
out:
    mov %r0, 0
    exit
