# A bpf_loop callback indexing a 16-byte map value with the unchecked index.
# type: xdp
# kernel-raw: missing btf func_info
# map: array key=4 value=16 entries=1
# privileged: reject no lower bound to a map value pointer
# unprivileged: reject no lower bound to a map value pointer
    stdw [%r10-8], 0
    mov %r1, 16
    lddw %r2, func 7
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-8]
    exit
    mov %r6, %r1
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    add %r0, %r6
    stb [%r0+0], 1
out:
    mov %r0, 0
    exit
