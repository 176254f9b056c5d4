# The store in the loop first overwrites part of a spilled register, so the kernel puts a barrier
# after it for good; by the time the speculative path with an unknown counter stores there the
# bytes are plain data, but the barrier stays, and the path ends after the store.
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r6, 0
    stdw [%r10-8], 0
loop:
    stxw [%r10-4], %r6
    add %r6, 1
    jle %r6, 9, loop
    mov %r0, 2
    exit
