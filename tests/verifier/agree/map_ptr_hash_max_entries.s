# max_entries read through a hash map's handle (struct bpf_htab begins with its struct bpf_map).
# type: xdp
# map: hash key=4 value=8 entries=4
# privileged: accept
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+76]
    exit
