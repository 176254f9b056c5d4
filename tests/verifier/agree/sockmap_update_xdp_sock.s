# An AF_XDP socket from an xskmap lookup put into a sockmap from XDP.
# type: xdp
# map: xskmap key=4 value=4 entries=4
# map: sockmap key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r3, %r0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    mov %r4, 0
    call 2
out:
    mov %r0, 2
    exit
