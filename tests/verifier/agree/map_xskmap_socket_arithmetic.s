# Arithmetic on an xskmap lookup's socket, even adding zero.
# type: xdp
# map: xskmap key=4 value=4 entries=4
# privileged: reject addition on R0
# unprivileged: reject addition on R0
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    add %r0, 0
    ldxw %r1, [%r0+0]
out:
    mov %r0, 2
    exit
