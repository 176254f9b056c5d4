# A sockmap's value is a socket, not memory: a stack value is refused.
# type: tc
# map: sockmap key=4 value=8 entries=4
# privileged: reject bpf_map_update_elem expects a socket in R3, found a stack pointer
# unprivileged: reject bpf_map_update_elem expects a socket in R3, found a stack pointer
    stw [%r10-4], 0
    stdw [%r10-16], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    mov %r4, 0
    call 2
    mov %r0, 0
    exit
