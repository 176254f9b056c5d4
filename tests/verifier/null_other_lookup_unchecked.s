# Checking one lookup result and dereferencing another.
# type: xdp
# map: hash key=4 value=8 entries=16
# expect: which may be NULL
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    mov %r6, %r0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r6, 0, out
    ldxdw %r1, [%r0+0]
out:
    mov %r0, 2
    exit
