# Submitting a pointer into the middle of a record.
# type: xdp
# map: ringbuf entries=4096
# expect: needs the record pointer exactly as reserved
    lddw %r1, map_fd 0
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r1, %r0
    add %r1, 8
    mov %r2, 0
    call 132
out:
    mov %r0, 2
    exit
