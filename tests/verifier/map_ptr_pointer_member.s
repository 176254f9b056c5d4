# Reading struct bpf_map's ops pointer through a map handle (offset 40 on Linux 6.18).
# type: xdp
# map: array key=4 value=8 entries=4
# expect: not supported by duet
# kernel: accept
# why: the kernel gives a pointer member of a map's structure as a BTF-typed kernel pointer (PTR_TO_BTF_ID), which duet does not model; duet verifies reads of the number fields only
    lddw %r1, map_fd 0
    ldxdw %r2, [%r1+40]
    mov %r0, 0
    exit
