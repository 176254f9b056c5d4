# An index known to be 3 guards a map value read; the branch it rules out reads out of bounds.
# For an unprivileged loader the kernel explores that branch speculatively (the index unknown)
# and, as the read there would be unsafe, stops it with a barrier: accepted in both modes.
# type: xdp
# map: array key=4 value=8 entries=1
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r1, 3
    jlt %r1, 8, ok
    add %r0, %r1
    ldxb %r0, [%r0+0]
    mov %r0, 2
    exit
ok:
    mov %r0, 2
    exit
out:
    mov %r0, 2
    exit
