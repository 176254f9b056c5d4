# A released socket's register returned: a number to a privileged loader (the kernel makes it one), unreadable to an unprivileged one.
# type: xdp
# privileged: accept
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
    mov %r1, %r0
    call 86
    mov %r0, %r7
    exit
out:
    mov %r0, 2
    exit
