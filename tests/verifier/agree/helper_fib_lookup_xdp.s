# bpf_fib_lookup from XDP with a zeroed struct bpf_fib_lookup (64 bytes) on the stack, then reading what it wrote.
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r6, %r1
    stdw [%r10-8], 0
    stdw [%r10-16], 0
    stdw [%r10-24], 0
    stdw [%r10-32], 0
    stdw [%r10-40], 0
    stdw [%r10-48], 0
    stdw [%r10-56], 0
    stdw [%r10-64], 0
    stw [%r10-64], 2
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -64
    mov %r3, 64
    mov %r4, 0
    call 69
    ldxw %r1, [%r10-52]
    ldxb %r1, [%r10-58]
    exit
