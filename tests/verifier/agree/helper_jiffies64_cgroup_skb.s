# bpf_jiffies64 from cgroup_skb.
# type: cgroup_skb
# privileged: accept
# unprivileged: accept
    call 118
    mov %r0, 1
    exit
