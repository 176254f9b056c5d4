# A cgroup_skb program returning 2: the kernel allows only 0 (drop) or 1 (pass) at ingress.
# type: cgroup_skb
# privileged: reject must return 0 (drop) or 1 (pass)
# unprivileged: reject must return 0 (drop) or 1 (pass)
    mov %r0, 2
    exit
