# bpf_fib_lookup is only for XDP and TC programs.
# type: socket_filter
# privileged: reject bpf_fib_lookup is not available to socket filter programs
# unprivileged: reject bpf_fib_lookup is not available to socket filter programs
    mov %r6, %r1
    stdw [%r10-8], 0
    stdw [%r10-16], 0
    stdw [%r10-24], 0
    stdw [%r10-32], 0
    stdw [%r10-40], 0
    stdw [%r10-48], 0
    stdw [%r10-56], 0
    stdw [%r10-64], 0
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -64
    mov %r3, 64
    mov %r4, 0
    call 69
    mov %r0, 0
    exit
