# bpf_ringbuf_reserve with a size that is not a constant.
# type: xdp
# map: ringbuf entries=4096
# expect: needs a constant size in R2
    ldxw %r2, [%r1+12]
    and %r2, 63
    lddw %r1, map_fd 0
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r1, %r0
    mov %r2, 0
    call 133
out:
    mov %r0, 2
    exit
