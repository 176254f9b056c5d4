# bpf_map_update_elem on a queue map (programs push with bpf_map_push_elem).
# type: xdp
# map: queue key=0 value=8 entries=4
# privileged: reject cannot be used with map
# unprivileged: reject cannot be used with map
    stdw [%r10-8], 1
    lddw %r1, map_fd 0
    mov %r2, 0
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 2
    mov %r0, 2
    exit
