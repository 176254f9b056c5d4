# A lookup result found equal to another map's checked value is not NULL in the equal branch.
# type: tc
# map: array key=4 value=8 entries=1
# map: hash key=4 value=8 entries=1
# map: hash key=4 value=8 entries=1
# privileged: accept
# unprivileged: reject may be NULL and is compared
    mov %r9, %r1
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r6, %r0
    jeq %r6, 0, out
    stw [%r10-4], 0
    lddw %r1, map_fd 2
    mov %r2, %r10
    add %r2, -4
    call 1
    jne %r0, %r6, out
    ldxw %r1, [%r0+0]
out:
    mov %r0, 0
    exit
