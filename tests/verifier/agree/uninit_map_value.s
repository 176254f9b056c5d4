# Updating a map with a value whose bytes were never written.
# type: xdp
# map: hash key=4 value=8 entries=16
# privileged: accept
# unprivileged: reject reads 8 bytes of value
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    lddw %r1, map_fd 0
    mov %r4, 0
    call 2
    mov %r0, 2
    exit
