# bpf_fib_lookup reads its parameters: never-written stack is unknown bytes to root only.
# type: xdp
# privileged: accept
# unprivileged: reject was never written
    mov %r6, %r1
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -64
    mov %r3, 64
    mov %r4, 0
    call 69
    mov %r0, 2
    exit
