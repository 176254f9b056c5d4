# bpf_get_current_pid_tgid from a cgroup_skb program.
# type: cgroup_skb
# privileged: accept
# unprivileged: accept
    call 14
    mov %r0, 1
    exit
