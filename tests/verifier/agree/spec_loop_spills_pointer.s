# A loop with a constant bound that spills a pointer (the context) each time round: the barrier
# after a pointer spill ends the speculative path.
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r6, 1
loop:
    stxdw [%r10-16], %r1
    add %r6, 1
    jlt %r6, 7, loop
    mov %r0, 2
    exit
