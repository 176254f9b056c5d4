# bpf_loop with a NULL context: the callback may not dereference it.
# type: xdp
# kernel-raw: missing btf func_info
# privileged: reject not a pointer
# unprivileged: reject not a pointer
    stdw [%r10-8], 0
    mov %r1, 10
    lddw %r2, func 7
    mov %r3, 0
    mov %r3, 0
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-8]
    exit
    ldxdw %r3, [%r2+0]
    mov %r0, 0
    exit
