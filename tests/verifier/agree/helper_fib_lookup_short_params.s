# bpf_fib_lookup told its parameters are 64 bytes, with only 32 bytes of stack left above them.
# type: xdp
# privileged: reject outside the 512-byte frame
# unprivileged: reject outside the 512-byte frame
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
    add %r2, -32
    mov %r3, 64
    mov %r4, 0
    call 69
    mov %r0, 2
    exit
