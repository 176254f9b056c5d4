# Writing past the end of a 16-byte record.
# type: xdp
# map: ringbuf entries=4096
# expect: ring buffer record (16 bytes)
    lddw %r1, map_fd 0
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    stdw [%r0+16], 1
    mov %r1, %r0
    mov %r2, 0
    call 132
out:
    mov %r0, 2
    exit
