# A socket looked up in one sockmap put into another from XDP, then released.
# type: xdp
# map: sockmap key=4 value=8 entries=4
# map: sockhash key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r7, %r0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r7
    mov %r4, 0
    call 2
    mov %r1, %r7
    call 86
out:
    mov %r0, 2
    exit
