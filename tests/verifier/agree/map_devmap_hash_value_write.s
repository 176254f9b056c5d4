# A devmap_hash lookup's value written: read-only for programs, as every devmap.
# type: xdp
# map: devmap_hash key=4 value=4 entries=4
# privileged: reject read-only for programs
# unprivileged: reject read-only for programs
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    stw [%r0+0], 1
out:
    mov %r0, 2
    exit
