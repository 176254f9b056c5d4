# An atomic fetch-and whose old value goes to its own address register (r0 = fetch_and(*(u64 *)r0, r0)),
# as the verifier fuzz target against the kernel found: the kernel checks the write half through
# r0 after the read half made it a number.
# type: xdp
# map: array key=4 value=8 entries=1
# privileged: reject atomic operation fetches the old value into R0
# unprivileged: reject atomic operation fetches the old value into R0
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, +1
    lock fetch and [%r0+0], %r0
    mov %r0, 2
    exit
