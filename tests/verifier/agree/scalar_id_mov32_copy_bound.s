# A bound learned on a 32-bit copy (`w3 = w2`) of a 32-bit number applies to the original: the
# kernel gives both the same scalar id, so `r2` indexes a 16-byte map value after `w3 <= 15`.
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
    ldxw %r2, [%r0+0]
    mov32 %r3, %r2
    jgt %r3, 15, out
    add %r0, %r2
    ldxb %r0, [%r0+0]
out:
    mov %r0, 0
    exit
