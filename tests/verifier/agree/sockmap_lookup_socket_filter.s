# A sockmap lookup in a socket filter, which has no bpf_sk_release.
# type: socket_filter
# map: sockmap key=4 value=8 entries=4
# privileged: reject bpf_sk_release is not available
# unprivileged: reject bpf_sk_release is not available
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r1, %r0
    call 86
out:
    mov %r0, 0
    exit
