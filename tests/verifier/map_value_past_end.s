# Reading 8 bytes at offset 8 of an 8-byte map value.
# type: xdp
# map: array key=4 value=8 entries=4
# expect: may touch bytes 8..16
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    ldxdw %r1, [%r0+8]
out:
    mov %r0, 2
    exit
