# bpf_skc_lookup_tcp in cgroup_skb: a struct bpf_sock_common, family and ports read.
# type: cgroup_skb
# privileged: accept
# unprivileged: accept
    mov %r6, %r1
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -16
    mov %r3, 12
    mov %r4, -1
    mov %r5, 0
    call 99
    jeq %r0, 0, out
    ldxw %r7, [%r0+4]
    ldxw %r8, [%r0+44]
    ldxw %r9, [%r0+0]
    mov %r1, %r0
    call 86
out:
    mov %r0, 1
    exit
