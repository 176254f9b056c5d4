# The NULL check of a copy makes the original a socket too (one reference).
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
    call 84
    mov %r7, %r0
    jeq %r7, 0, out
    ldxw %r8, [%r0+4]
    mov %r1, %r0
    call 86
out:
    mov %r0, 2
    exit
