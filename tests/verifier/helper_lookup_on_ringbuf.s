# bpf_map_lookup_elem on a ring buffer.
# type: xdp
# map: ringbuf entries=4096
# expect: cannot be used with map
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
