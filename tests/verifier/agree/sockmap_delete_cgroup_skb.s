# bpf_map_delete_elem on a sockmap from a cgroup_skb program, which may not change one.
# type: cgroup_skb
# map: sockmap key=4 value=8 entries=4
# privileged: reject cannot update sockmap
# unprivileged: reject cannot update sockmap
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 3
    mov %r0, 1
    exit
