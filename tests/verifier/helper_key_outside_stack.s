# A map key pointer with fewer stack bytes than the key needs.
# type: xdp
# map: hash key=8 value=8 entries=16
# expect: outside the 512-byte frame
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
