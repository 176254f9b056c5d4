# A map value pointer plus an index in -4..=3: refused as root at the write (the unsigned bound is lost), and without CAP_PERFMON at the addition.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: reject unbounded offset
# unprivileged: reject may be negative or positive
    ldxw %r6, [%r1+16]
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    and %r6, 7
    add %r6, -4
    add %r0, 8
    add %r0, %r6
    stb [%r0+0], 1
out:
    mov %r0, 0
    exit
