# Storing the frame pointer into a map value.
# type: xdp
# map: array key=4 value=8 entries=1
# privileged: accept
# unprivileged: reject would leak its address
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    stxdw [%r0+0], %r10
out:
    mov %r0, 2
    exit
