# An index masked to 0..15 into an 8-byte value.
# type: xdp
# map: array key=4 value=8 entries=4
# expect: may touch bytes from 0 up to 16
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    ldxdw %r1, [%r0+0]
    and %r1, 15
    add %r0, %r1
    ldxb %r1, [%r0+0]
out:
    mov %r0, 2
    exit
