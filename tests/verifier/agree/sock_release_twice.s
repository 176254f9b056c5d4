# A socket released twice (to a privileged loader the released register is a number, as the kernel
# makes it; to an unprivileged one it is unreadable).
# type: tc
# privileged: reject expects a socket reference
# unprivileged: reject already released
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
    mov %r7, %r0
    mov %r1, %r7
    call 86
    mov %r1, %r7
    call 86
out:
    mov %r0, 0
    exit
