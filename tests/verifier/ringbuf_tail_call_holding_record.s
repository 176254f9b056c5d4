# A tail call while a ring buffer record is held.
# type: xdp
# map: ringbuf entries=4096
# map: prog_array key=4 value=4 entries=4
# expect: a tail call while holding a ring buffer record
    mov %r6, %r1
    lddw %r1, map_fd 0
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r7, %r0
    mov %r1, %r6
    lddw %r2, map_fd 1
    mov %r3, 0
    call 12
    mov %r1, %r7
    mov %r2, 0
    call 133
out:
    mov %r0, 2
    exit
