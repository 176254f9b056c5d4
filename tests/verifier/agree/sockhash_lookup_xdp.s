# A sockhash lookup in XDP yields a socket, released after reading its state.
# type: xdp
# map: sockhash key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxb %r7, [%r0+72]
    mov %r1, %r0
    call 86
out:
    mov %r0, 2
    exit
