# bpf_csum_diff(n, 0, NULL, 0, 0) with n an unknown number: only NULL may stand for no memory.
# type: xdp
# privileged: reject expects a pointer to 0 bytes
# unprivileged: reject expects a pointer to 0 bytes
    ldxw %r1, [%r1+12]
    mov %r2, 0
    mov %r3, 0
    mov %r4, 0
    mov %r5, 0
    call 28
    mov %r0, 2
    exit
