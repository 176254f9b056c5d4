# bpf_fib_lookup with its parameters in a writable map value.
# type: xdp
# map: array key=4 value=64 entries=1
# privileged: accept
# unprivileged: accept
    mov %r6, %r1
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    mov %r1, %r6
    mov %r2, %r0
    mov %r3, 64
    mov %r4, 0
    call 69
out:
    mov %r0, 2
    exit
