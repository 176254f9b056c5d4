# A bounded number plus a packet pointer (`off += data`): the same rule with the operands swapped.
# type: xdp
# privileged: accept
# unprivileged: reject an unprivileged loader may add registers only to stack and map value pointers
    ldxw %r2, [%r1+0]
    ldxw %r4, [%r1+4]
    ldxw %r3, [%r1+16]
    and %r3, 7
    add %r3, %r2
    mov %r5, %r3
    add %r5, 1
    jgt %r5, %r4, out
    ldxb %r0, [%r3+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
