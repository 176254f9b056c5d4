# A cgroup_skb program returning 2: it must return 0 (drop) or 1 (pass).
# type: cgroup_skb
# kernel: reject
# expect: it must return 0 (drop) or 1 (pass)
    mov %r0, 2
    exit
