# Writing a looked-up value of a map created with BPF_F_RDONLY_PROG (the flag alone decides).
# type: xdp
# map: array key=4 value=8 entries=4 flags=0x80
# expect: which is read-only for programs
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    stdw [%r0+0], 1
out:
    mov %r0, 2
    exit
