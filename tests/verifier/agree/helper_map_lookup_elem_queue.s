# bpf_map_lookup_elem on a queue map (queues have push, pop and peek).
# type: xdp
# map: queue key=0 value=8 entries=16
# privileged: reject cannot be used with map
# unprivileged: reject cannot be used with map
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r0, 2
    exit
