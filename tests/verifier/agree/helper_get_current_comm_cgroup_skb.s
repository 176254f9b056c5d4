# bpf_get_current_comm from a cgroup_skb program.
# type: cgroup_skb
# privileged: accept
# unprivileged: reject bpf_get_current_comm needs CAP_PERFMON
    mov %r1, %r10
    add %r1, -16
    mov %r2, 16
    call 16
    mov %r0, 1
    exit
