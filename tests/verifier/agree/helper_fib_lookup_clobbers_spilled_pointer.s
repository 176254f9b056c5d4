# A pointer spilled inside bpf_fib_lookup's parameters is overwritten by the call: reloading it gives a number.
# type: xdp
# privileged: reject not a pointer
# unprivileged: reject contains a pointer spilled
    mov %r6, %r1
    stdw [%r10-8], 0
    stdw [%r10-16], 0
    stdw [%r10-24], 0
    stdw [%r10-32], 0
    stdw [%r10-40], 0
    stdw [%r10-48], 0
    stdw [%r10-56], 0
    stdw [%r10-64], 0
    stxdw [%r10-64], %r6
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -64
    mov %r3, 64
    mov %r4, 0
    call 69
    ldxdw %r2, [%r10-64]
    ldxw %r0, [%r2+0]
    mov %r0, 2
    exit
