# A 4-byte read of the upper half of a spilled constant: to the kernel an unknown number (it keeps
# a spilled value only for a read at the spill's start), so the dereference behind `r4 < 1` is
# explored, and refused.
# type: xdp
# privileged: reject which is a number
# unprivileged: reject which is a number
    mov %r1, 0x63636363
    stxdw [%r10-64], %r1
    ldxw %r4, [%r10-60]
    mov %r0, 2
    jlt %r4, 1, +1
    ldxdw %r0, [%r4+0]
    exit
