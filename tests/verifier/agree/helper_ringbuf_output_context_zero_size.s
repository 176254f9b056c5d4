# bpf_ringbuf_output(map, ctx, 0, 0): a zero size does not make the context pointer memory.
# type: xdp
# map: ringbuf key=0 value=0 entries=4096
# privileged: reject expects a pointer to 0 bytes
# unprivileged: reject expects a pointer to 0 bytes
    mov %r2, %r1
    lddw %r1, map_fd 0
    mov %r3, 0
    mov %r4, 0
    call 130
    mov %r0, 2
    exit
