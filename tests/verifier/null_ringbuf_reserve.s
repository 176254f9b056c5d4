# Writing into a ring buffer record without checking the reservation for NULL.
# type: xdp
# map: ringbuf entries=4096
# expect: bpf_ringbuf_reserve returns NULL when the ring buffer is full
    lddw %r1, map_fd 0
    mov %r2, 8
    mov %r3, 0
    call 131
    stdw [%r0+0], 1
    mov %r1, %r0
    mov %r2, 0
    call 132
    mov %r0, 2
    exit
