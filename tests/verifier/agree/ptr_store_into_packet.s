# Storing the frame pointer into packet data.
# type: xdp
# privileged: accept
# unprivileged: reject would leak its address
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    stxdw [%r2+0], %r10
out:
    mov %r0, 2
    exit
