# bpf_get_stackid from XDP.
# type: xdp
# map: stack_trace key=4 value=1016 entries=128
# privileged: reject bpf_get_stackid is not available
# unprivileged: reject bpf_get_stackid is not available
    lddw %r2, map_fd 0
    mov %r3, 0
    call 27
    mov %r0, 2
    exit
