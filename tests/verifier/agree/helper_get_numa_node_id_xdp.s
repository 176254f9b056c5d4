# bpf_get_numa_node_id from XDP.
# type: xdp
# privileged: accept
# unprivileged: accept
    call 42
    mov %r0, 2
    exit
