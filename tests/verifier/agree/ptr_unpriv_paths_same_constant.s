# A map value pointer plus a register holding 4 on both paths, set apart: the paths agree.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    mov %r6, %r1
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxw %r3, [%r6+12]
    jeq %r3, 0, other
    mov %r2, 4
    ja join
other:
    mov %r2, 4
join:
    add %r0, %r2
    ldxb %r0, [%r0+0]
    exit
out:
    mov %r0, 2
    exit
