# Indexing a map value with an unbounded number.
# type: xdp
# map: array key=4 value=64 entries=4
# expect: with an unbounded offset
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    ldxw %r1, [%r0+0]
    add %r0, %r1
    ldxb %r1, [%r0+0]
out:
    mov %r0, 2
    exit
