# Adding to a map handle.
# type: xdp
# map: hash key=4 value=8 entries=16
# expect: a map handle: map handles are not memory
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    add %r1, 8
    call 1
    mov %r0, 2
    exit
