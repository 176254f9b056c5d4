# Reserving a ring buffer record and returning without submitting it.
# type: xdp
# map: ringbuf entries=4096
# expect: still holding the ring buffer record reserved at insn 4
    lddw %r1, map_fd 0
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    stdw [%r0+0], 1
out:
    mov %r0, 2
    exit
