# A map key whose bytes were never written.
# type: xdp
# map: hash key=8 value=8 entries=16
# privileged: accept
# unprivileged: reject was never written
    mov %r2, %r10
    add %r2, -8
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
