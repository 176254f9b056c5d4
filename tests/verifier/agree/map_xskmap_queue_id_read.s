# An xskmap lookup yields the AF_XDP socket: its queue_id (4 bytes at offset 0) read.
# type: xdp
# map: xskmap key=4 value=4 entries=4
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxw %r1, [%r0+0]
out:
    mov %r0, 2
    exit
