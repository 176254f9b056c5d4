# Two lookups: the second result, found different from the checked first one, may still be NULL.
# type: xdp
# map: hash key=4 value=8 entries=16
# privileged: reject which may be NULL
# unprivileged: reject may be NULL and is compared with something other than zero
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    mov %r6, %r0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, %r6, out
    ldxdw %r1, [%r0+0]
out:
    mov %r0, 2
    exit
