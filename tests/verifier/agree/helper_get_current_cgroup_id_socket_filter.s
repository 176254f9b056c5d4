# bpf_get_current_cgroup_id from a socket filter (any program type, any loader).
# type: socket_filter
# privileged: accept
# unprivileged: accept
    call 80
    mov %r0, 0
    exit
