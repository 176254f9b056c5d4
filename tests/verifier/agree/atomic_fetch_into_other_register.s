# The same fetch-and with the old value going to another register: accepted.
# type: xdp
# map: array key=4 value=8 entries=1
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, +3
    mov %r1, 6
    lock fetch and [%r0+0], %r1
    mov %r0, %r1
    and %r0, 3
    exit
