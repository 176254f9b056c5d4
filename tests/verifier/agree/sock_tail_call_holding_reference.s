# A tail call while a socket is held.
# type: tc
# map: prog_array key=4 value=4 entries=4
# privileged: reject tail call while holding a socket reference
# unprivileged: reject tail call while holding a socket reference
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
    mov %r1, %r6
    lddw %r2, map_fd 0
    mov %r3, 0
    call 12
    mov %r1, %r7
    call 86
out:
    mov %r0, 0
    exit
