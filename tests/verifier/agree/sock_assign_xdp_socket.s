# bpf_sk_assign given an AF_XDP socket from an xskmap lookup (the kernel takes any socket type).
# type: tc
# map: xskmap key=4 value=4 entries=4
# privileged: accept
# unprivileged: accept
    mov %r6, %r1
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r1, %r6
    mov %r2, %r0
    mov %r3, 0
    call 124
out:
    mov %r0, 0
    exit
