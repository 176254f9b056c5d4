# bpf_ringbuf_output(map, NULL, 0, 0): the data is not nullable.
# type: xdp
# map: ringbuf key=0 value=0 entries=4096
# privileged: reject expects
# unprivileged: reject expects
    lddw %r1, map_fd 0
    mov %r2, 0
    mov %r3, 0
    mov %r4, 0
    call 130
    mov %r0, 2
    exit
