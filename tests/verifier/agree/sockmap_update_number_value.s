# A sockmap update with a number as the value.
# type: xdp
# map: sockmap key=4 value=8 entries=4
# privileged: reject bpf_map_update_elem expects a socket in R3, found a number
# unprivileged: reject bpf_map_update_elem expects a socket in R3, found a number
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    mov %r3, 0
    mov %r4, 0
    call 2
    mov %r0, 2
    exit
