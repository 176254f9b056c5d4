# A socket released by a function the program calls (references belong to the whole call chain).
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
    mov %r1, %r0
    call local rel
out:
    mov %r0, 0
    exit
rel:
    call 86
    mov %r0, 0
    exit
