# bpf_map_lookup_elem on an LRU per-CPU hash, then a read of its value.
# type: xdp
# map: lru_percpu_hash key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxb %r0, [%r0+0]
out:
    mov %r0, 2
    exit
