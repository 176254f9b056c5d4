# Reading a value of a map programs may only write (BPF_F_WRONLY_PROG).
# type: xdp
# map: array key=4 value=8 entries=4 flags=0x100
# expect: write-only for programs (BPF_F_WRONLY_PROG)
# expect: read from map forbidden
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    ldxdw %r0, [%r0+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
