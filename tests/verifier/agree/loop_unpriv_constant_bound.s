# A loop with a constant bound: a privileged loader's loop ends; for an unprivileged one the kernel
# also explores, speculatively, the loop going round with an unknown counter (Spectre v1), which
# comes back to the same state: an infinite loop.
# type: xdp
# privileged: accept
# unprivileged: reject infinite loop
    mov %r7, 0
    mov %r8, 0
loop:
    mov %r8, 3
    add %r7, 1
    jlt %r7, 5, loop
    mov %r0, 2
    exit
