# bpf_map_push_elem of a stack value onto a queue map.
# type: xdp
# map: queue key=0 value=8 entries=16
# privileged: accept
# unprivileged: accept
    stdw [%r10-8], 7
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -8
    mov %r3, 0
    call 87
    mov %r0, 2
    exit
