# A loop over packet bytes with a constant bound: unprivileged, its speculative path (an unknown
# counter) comes back to the same state, an infinite loop.
# type: xdp
# privileged: accept
# unprivileged: reject infinite loop
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 1
    jgt %r4, %r3, out
    mov %r7, 0
    mov %r8, 0
loop:
    ldxb %r1, [%r2+0]
    jset %r1, 1, s
    ja e
s:
    add %r8, 1
e:
    add %r7, 1
    jlt %r7, 5, loop
out:
    mov %r0, 2
    exit
