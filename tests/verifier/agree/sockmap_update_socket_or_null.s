# A sockmap update with __sk_buff.sk before its NULL check.
# type: tc
# map: sockmap key=4 value=8 entries=4
# privileged: reject bpf_map_update_elem is passed R3, which may be NULL
# unprivileged: reject bpf_map_update_elem is passed R3, which may be NULL
    ldxdw %r7, [%r1+168]
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r7
    mov %r4, 0
    call 2
    mov %r0, 0
    exit
