# A 4-byte read at the start of a spilled constant is the constant cut to 4 bytes (the kernel's
# narrow fill): 0x63636363 is not below 1, so the dereference behind `r4 < 1` is never reached.
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r1, 0x63636363
    stxdw [%r10-64], %r1
    ldxw %r4, [%r10-64]
    mov %r0, 2
    jge %r4, 1, +1
    ldxdw %r0, [%r4+0]
    exit
