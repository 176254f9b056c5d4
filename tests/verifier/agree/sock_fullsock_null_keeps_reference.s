# bpf_sk_fullsock returning NULL does not release the socket it was given: that path leaks it.
# type: tc
# privileged: reject unreleased reference
# unprivileged: reject unreleased reference
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
    jeq %r0, 0, out
    mov %r1, %r6
    call 86
out:
    mov %r0, 0
    exit
