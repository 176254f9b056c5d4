# A sign-extending copy (`r3 = (s8)r2`) of a number below the sign bit is the same number: the
# kernel links the two, and the bound learned on `r3` lets `r2` index a 16-byte map value.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    ldxb %r2, [%r0+0]
    and %r2, 127
    movsx864 %r3, %r2
    jgt %r3, 15, out
    add %r0, %r2
    ldxb %r0, [%r0+0]
out:
    mov %r0, 0
    exit
