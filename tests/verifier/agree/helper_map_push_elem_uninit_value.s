# bpf_map_push_elem of a value never written (privileged loaders may read uninitialised stack).
# type: xdp
# map: queue key=0 value=8 entries=16
# privileged: accept
# unprivileged: reject never written
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -8
    mov %r3, 0
    call 87
    mov %r0, 2
    exit
