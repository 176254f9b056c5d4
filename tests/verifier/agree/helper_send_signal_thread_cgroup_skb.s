# bpf_send_signal_thread from cgroup_skb, CAP_PERFMON only.
# type: cgroup_skb
# privileged: accept
# unprivileged: reject bpf_send_signal_thread needs CAP_PERFMON
    mov %r1, 9
    call 117
    mov %r0, 1
    exit
