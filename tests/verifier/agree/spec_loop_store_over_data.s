# The same loop storing its counter over plain data (4 bytes at fp-4, not a spill): no barrier,
# and the speculative path with an unknown counter comes back to the same state.
# type: xdp
# privileged: accept
# unprivileged: reject infinite loop
    mov %r6, 1
    stw [%r10-4], 1
loop:
    stxw [%r10-4], %r6
    add %r6, 1
    jlt %r6, 7, loop
    mov %r0, 2
    exit
