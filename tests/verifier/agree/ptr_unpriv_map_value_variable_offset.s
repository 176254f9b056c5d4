# A map value pointer plus a bounded index (`& 15` of a 16-byte value): allowed without CAP_PERFMON.
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
    and %r6, 15
    add %r0, %r6
    stb [%r0+0], 1
out:
    mov %r0, 0
    exit
