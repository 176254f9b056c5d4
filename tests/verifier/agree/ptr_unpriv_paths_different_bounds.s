# A map value pointer plus an index masked with 7 on one path and 15 on the other.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: accept
# unprivileged: reject tried to add from different maps, paths or scalars
    stw [%r10-4], 0
    mov %r6, %r1
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxw %r3, [%r6+12]
    ldxw %r2, [%r6+16]
    jeq %r3, 0, small
    and %r2, 15
    ja join
small:
    and %r2, 7
join:
    add %r0, %r2
    ldxb %r0, [%r0+0]
    exit
out:
    mov %r0, 2
    exit
