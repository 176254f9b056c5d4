# `w3 = w2` of a 64-bit number is not the same number: the kernel gives the copy no shared id,
# so the bound learned on `w3` says nothing about `r2`, and indexing with `r2` is refused.
# type: xdp
# map: array key=4 value=16 entries=1
# privileged: reject adding a number with no lower bound
# unprivileged: reject adding a number with no lower bound
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    ldxdw %r2, [%r0+0]
    mov32 %r3, %r2
    jgt %r3, 15, out
    add %r0, %r2
    ldxb %r0, [%r0+0]
out:
    mov %r0, 0
    exit
