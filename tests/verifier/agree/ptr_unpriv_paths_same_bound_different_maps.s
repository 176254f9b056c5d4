# Values of two different maps plus the same bounded index: the kernel's masking limit is the index's bound on both paths, so the paths agree even though the maps differ.
# type: xdp
# map: array key=4 value=16 entries=1
# map: array key=4 value=32 entries=1
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
    jeq %r3, 0, join
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
join:
    ldxw %r2, [%r6+16]
    and %r2, 7
    add %r0, %r2
    ldxb %r0, [%r0+0]
    exit
out:
    mov %r0, 2
    exit
