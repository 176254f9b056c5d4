# A sockmap lookup's result is a socket, not a map value: no writes.
# type: tc
# map: sockmap key=4 value=8 entries=4
# privileged: reject cannot write into a socket
# unprivileged: reject cannot write into a socket
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    stw [%r0+0], 1
    mov %r1, %r0
    call 86
out:
    mov %r0, 0
    exit
