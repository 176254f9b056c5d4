# bpf_ringbuf_query on a hash map.
# type: xdp
# map: hash key=4 value=8 entries=4
# privileged: reject cannot be used with map
# unprivileged: reject cannot be used with map
    lddw %r1, map_fd 0
    mov %r2, 0
    call 134
    mov %r0, 2
    exit
