# A loop whose bound is an unknown 32-bit value.
# type: xdp
# expect: could not be proven to terminate
# expect: back to insn 3
    ldxw %r2, [%r1+12]        # ingress_ifindex: unknown
    mov %r0, 2
    mov %r1, 0
loop:
    add %r1, 1
    jlt %r1, %r2, loop
    exit
