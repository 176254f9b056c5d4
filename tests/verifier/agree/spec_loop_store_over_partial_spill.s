# A loop storing 4 bytes of its counter over a 4-byte spill at the same aligned offset: the
# barrier after the store ends the speculative path.
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r6, 1
    stw [%r10-4], 1
    stxw [%r10-8], %r6
loop:
    stxw [%r10-8], %r6
    add %r6, 1
    jlt %r6, 7, loop
    mov %r0, 2
    exit
