# A map value pointer moved by 4, then by an index below 8 (at most byte 11 of 16): allowed without CAP_PERFMON.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: accept
# unprivileged: accept
    ldxw %r6, [%r1+16]
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    and %r6, 7
    add %r0, 4
    add %r0, %r6
    stb [%r0+0], 1
out:
    mov %r0, 0
    exit
