# bpf_get_current_ancestor_cgroup_id(1) from TC.
# type: tc
# privileged: accept
# unprivileged: accept
    mov %r1, 1
    call 123
    mov %r0, 0
    exit
