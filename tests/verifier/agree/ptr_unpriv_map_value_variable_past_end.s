# A map value pointer at byte 12 plus an index below 8 could reach byte 19 of 16, never used: refused without CAP_PERFMON.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: accept
# unprivileged: reject would point outside the map
    ldxw %r6, [%r1+16]
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    and %r6, 7
    add %r0, 12
    add %r0, %r6
    mov %r0, 0
out:
    mov %r0, 0
    exit
