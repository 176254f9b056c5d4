# A map value pointer moved past the end of its 16-byte value, never used: refused without CAP_PERFMON.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: accept
# unprivileged: reject would point outside the map
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    add %r0, 20
out:
    mov %r0, 0
    exit
