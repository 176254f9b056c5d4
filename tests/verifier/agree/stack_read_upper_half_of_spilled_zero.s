# A read of the upper half of a spilled zero is zero to the kernel too (every byte read is the
# spill of a zero), so the dereference behind `r4 != 0` is never reached.
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r1, 0
    stxdw [%r10-64], %r1
    ldxw %r4, [%r10-60]
    mov %r0, 2
    jeq %r4, 0, +1
    ldxdw %r0, [%r4+0]
    exit
