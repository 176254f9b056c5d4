# __sk_buff.sk in a cgroup_skb program, cast with bpf_sk_fullsock: its protocol read, nothing to release.
# type: cgroup_skb
# privileged: accept
# unprivileged: accept
    ldxdw %r1, [%r1+168]
    jeq %r1, 0, out
    call 95
    jeq %r0, 0, out
    ldxw %r3, [%r0+12]
out:
    mov %r0, 1
    exit
