# A lookup result found equal to a stack pointer is still maybe NULL (the kernel infers non-NULL only from map values, records, sockets).
# type: tc
# map: array key=4 value=8 entries=1
# map: hash key=4 value=8 entries=1
# map: hash key=4 value=8 entries=1
# privileged: reject may be NULL
# unprivileged: reject may be NULL
    mov %r9, %r1
    mov %r6, %r10
    add %r6, -8
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jne %r0, %r6, out
    ldxw %r1, [%r0+0]
out:
    mov %r0, 0
    exit
