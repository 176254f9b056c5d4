# An xskmap lookup's socket written as if it were a map value.
# type: xdp
# map: xskmap key=4 value=4 entries=4
# privileged: reject invalid xdp_sock access
# unprivileged: reject invalid xdp_sock access
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    stw [%r0+0], 1
out:
    mov %r0, 2
    exit
