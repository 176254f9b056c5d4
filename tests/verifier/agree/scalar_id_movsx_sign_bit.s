# A sign-extending copy (`r3 = (s8)r2`) of a byte that may have its sign bit set is another
# number: not linked, so the bound on `r3` leaves `r2` unbounded and the access is refused.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: reject may touch bytes from 0 up to 256
# unprivileged: reject would point outside the map `map0` value (0..=255 of 16 bytes)
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    ldxb %r2, [%r0+0]
    movsx864 %r3, %r2
    jgt %r3, 15, out
    add %r0, %r2
    ldxb %r0, [%r0+0]
out:
    mov %r0, 0
    exit
