# `r0 += r2` with the map value pointer in r0 on one path and in r2 on the other.
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
    mov %r2, 4
    jeq %r3, 0, join
    mov %r2, %r0
    mov %r0, 4
join:
    add %r0, %r2
    ldxb %r0, [%r0+0]
    exit
out:
    mov %r0, 2
    exit
