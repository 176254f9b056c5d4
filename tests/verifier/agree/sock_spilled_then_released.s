# A socket spilled to the stack across a call, filled back and released.
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
    stxdw [%r10-24], %r0
    call 5
    ldxdw %r1, [%r10-24]
    ldxw %r7, [%r1+4]
    call 86
out:
    mov %r0, 0
    exit
