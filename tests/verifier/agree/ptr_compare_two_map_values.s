# Two map value pointers compared with each other: privileged only.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: accept
# unprivileged: reject pointer-comparison
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r6, %r0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    jeq %r0, %r6, out
out:
    mov %r0, 2
    exit
