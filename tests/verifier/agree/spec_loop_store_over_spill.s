# A loop with a constant bound that stores its counter over a spilled register: without
# CAP_PERFMON the kernel puts a barrier after that store (Spectre v4), so the speculative path
# with an unknown counter ends there instead of going round for ever.
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r6, 1
    stdw [%r10-8], 0
loop:
    stxdw [%r10-8], %r6
    add %r6, 1
    jlt %r6, 7, loop
    mov %r0, 2
    exit
