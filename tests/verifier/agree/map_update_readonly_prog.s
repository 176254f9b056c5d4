# bpf_map_update_elem on a map created with BPF_F_RDONLY_PROG: programs may not change it.
# type: xdp
# map: hash key=4 value=8 entries=4 flags=0x80
# privileged: reject write into map forbidden
# unprivileged: reject write into map forbidden
    stw [%r10-4], 0
    stdw [%r10-16], 1
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    mov %r4, 0
    call 2
    mov %r0, 2
    exit
