# A devmap lookup's value written: the kernel creates devmaps read-only for programs (BPF_F_RDONLY_PROG).
# type: xdp
# map: devmap key=4 value=4 entries=4
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
