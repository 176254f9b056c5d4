# Passing packet bytes straight to bpf_ringbuf_output, which may not read the packet.
# type: xdp
# map: ringbuf entries=4096
# expect: bpf_ringbuf_output is passed R2, a packet pointer
# expect: helper access to the packet is not allowed
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    lddw %r1, map_fd 0
    mov %r3, 14
    mov %r4, 0
    call 130
out:
    mov %r0, 2
    exit
