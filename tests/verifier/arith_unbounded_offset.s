# Adding a number with no lower bound to a packet pointer.
# type: xdp
# map: array key=4 value=8 entries=1
# expect: adding a number with no lower bound
    mov %r6, %r1
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    ldxdw %r5, [%r0+0]
    ldxw %r2, [%r6+0]
    add %r2, %r5
out:
    mov %r0, 2
    exit
