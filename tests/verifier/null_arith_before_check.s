# Offsetting a lookup result before checking it for NULL.
# type: xdp
# map: hash key=4 value=16 entries=16
# expect: which may be NULL
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    add %r0, 8
    jeq %r0, 0, out
    ldxdw %r0, [%r0+0]
out:
    mov %r0, 2
    exit
