# bpf_fib_lookup's parameters in the packet.
# type: xdp
# privileged: reject helper access to the packet is not allowed
# unprivileged: reject helper access to the packet is not allowed
    mov %r6, %r1
    ldxw %r2, [%r6+0]
    ldxw %r3, [%r6+4]
    mov %r4, %r2
    add %r4, 64
    jgt %r4, %r3, out
    mov %r1, %r6
    mov %r3, 64
    mov %r4, 0
    call 69
out:
    mov %r0, 2
    exit
