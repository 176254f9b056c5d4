# bpf_ringbuf_output with a size that has no upper bound.
# type: xdp
# map: ringbuf entries=4096
# expect: has no upper bound
    ldxw %r3, [%r1+12]
    stdw [%r10-8], 0
    mov %r2, %r10
    add %r2, -8
    lddw %r1, map_fd 0
    mov %r4, 0
    call 130
    mov %r0, 2
    exit
