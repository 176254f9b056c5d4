# The barrier ends a speculative path only after the store: an infinite loop the speculative
# path reaches before any store is still found.
# type: xdp
# privileged: accept
# unprivileged: reject infinite loop
    mov %r6, 1
    stdw [%r10-8], 0
loop:
    add %r6, 1
    jlt %r6, 7, loop
    stxdw [%r10-8], %r6
    mov %r0, 2
    exit
