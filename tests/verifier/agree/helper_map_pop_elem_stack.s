# bpf_map_pop_elem of a stack map into an unwritten stack buffer, read after.
# type: tc
# map: stack key=0 value=8 entries=16
# privileged: accept
# unprivileged: accept
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -8
    call 88
    ldxdw %r0, [%r10-8]
    mov %r0, 0
    exit
