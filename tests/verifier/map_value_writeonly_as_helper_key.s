# Passing a write-only map's value (BPF_F_WRONLY_PROG) to a helper that reads it as a key.
# type: xdp
# map: array key=4 value=8 entries=4 flags=0x100
# expect: read of map `map0`, which is write-only for programs
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    mov %r2, %r0
    lddw %r1, map_fd 0
    call 1
out:
    mov %r0, 2
    exit
