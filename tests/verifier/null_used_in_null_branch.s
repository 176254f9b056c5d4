# Using the lookup result on the branch where it is NULL.
# type: xdp
# map: hash key=4 value=8 entries=16
# expect: which is a number, here NULL
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jne %r0, 0, found
    ldxdw %r0, [%r0+0]
    and %r0, 3
    exit
found:
    mov %r0, 2
    exit
