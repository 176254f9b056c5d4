# A cgroup_skb program returning a random bit.
# type: cgroup_skb
# privileged: accept
# unprivileged: accept
    call 7
    and %r0, 1
    exit
