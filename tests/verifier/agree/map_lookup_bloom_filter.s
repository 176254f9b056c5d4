# bpf_map_lookup_elem on a bloom filter map, which programs reach through its own helpers only.
# type: xdp
# map: bloom_filter key=0 value=4 entries=4
# privileged: reject cannot be used with map
# unprivileged: reject cannot be used with map
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
