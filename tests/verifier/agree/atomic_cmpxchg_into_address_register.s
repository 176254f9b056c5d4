# A compare-and-exchange through r0, which also receives the old value: refused by the kernel
# for the same reason as a fetch into the address register.
# type: xdp
# map: array key=4 value=8 entries=1
# privileged: reject atomic operation fetches the old value into R0
# unprivileged: reject atomic operation fetches the old value into R0
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, +2
    mov %r1, 7
    lock cmpxchg [%r0+0], %r1
    mov %r0, 2
    exit
