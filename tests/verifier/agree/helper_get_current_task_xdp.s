# bpf_get_current_task from XDP: every program type may call it, a loader with CAP_PERFMON only.
# type: xdp
# privileged: accept
# unprivileged: reject bpf_get_current_task needs CAP_PERFMON
    call 35
    mov %r0, 2
    exit
