# Writing to a map the program may only read (BPF_F_RDONLY_PROG).
# type: xdp
# map: array key=4 value=8 entries=1 flags=0x80 readonly
# expect: which is read-only for programs
    lddw %r1, map_value 0, 0
    stdw [%r1+0], 1
    mov %r0, 2
    exit
