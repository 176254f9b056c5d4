# Referring to a map that does not exist.
# type: xdp
# map: hash key=4 value=8 entries=16
# expect: refers to map 3, but the program has 1 map(s)
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 3
    call 1
    mov %r0, 2
    exit
