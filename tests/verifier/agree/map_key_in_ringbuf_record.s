# A ring buffer record passed as the key of bpf_map_lookup_elem.
# type: xdp
# map: ringbuf key=0 value=0 entries=4096
# map: hash key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    lddw %r1, map_fd 0
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r6, %r0
    stdw [%r6+0], 0
    lddw %r1, map_fd 1
    mov %r2, %r6
    call 1
    mov %r1, %r6
    mov %r2, 0
    call 133
out:
    mov %r0, 2
    exit
