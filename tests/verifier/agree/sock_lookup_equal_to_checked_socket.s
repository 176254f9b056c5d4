# A socket lookup result found equal to a checked socket is not NULL in the equal branch (both released).
# type: tc
# map: array key=4 value=8 entries=1
# map: hash key=4 value=8 entries=1
# map: hash key=4 value=8 entries=1
# privileged: accept
# unprivileged: reject may be NULL and is compared
    mov %r9, %r1
    mov %r1, %r9
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r2, %r10
    add %r2, -16
    mov %r3, 12
    mov %r4, -1
    mov %r5, 0
    call 84
    jeq %r0, 0, out
    mov %r6, %r0
    mov %r1, %r9
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r2, %r10
    add %r2, -16
    mov %r3, 12
    mov %r4, -1
    mov %r5, 0
    call 84
    jne %r0, %r6, rel0
    ldxw %r1, [%r0+4]
    mov %r1, %r0
    call 86
    mov %r1, %r6
    call 86
    mov %r0, 0
    exit
rel0:
    mov %r7, %r0
    mov %r1, %r6
    call 86
    jeq %r7, 0, out
    mov %r1, %r7
    call 86
out:
    mov %r0, 0
    exit
