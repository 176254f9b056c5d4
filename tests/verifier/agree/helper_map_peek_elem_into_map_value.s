# bpf_map_peek_elem of a queue into a map value.
# type: socket_filter
# map: queue key=0 value=8 entries=16
# map: array key=4 value=16 entries=1
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r2, %r0
    add %r2, 8
    lddw %r1, map_fd 0
    call 89
out:
    mov %r0, 0
    exit
