# Writing into a record after submitting it.
# type: xdp
# map: ringbuf entries=4096
# expect: was already submitted or discarded
    lddw %r1, map_fd 0
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r6, %r0
    mov %r1, %r0
    mov %r2, 0
    call 132
    stdw [%r6+0], 1
out:
    mov %r0, 2
    exit
