# Dereferencing a hash map lookup without a NULL check.
# type: xdp
# map: hash key=4 value=8 entries=16
# expect: which may be NULL (map_value_or_null)
# expect: check `if (!ptr) return ...;`
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    ldxdw %r0, [%r0+0]
    and %r0, 3
    exit
