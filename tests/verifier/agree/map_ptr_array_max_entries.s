# A privileged program reads struct bpf_map's max_entries through an array's handle ((struct bpf_map *)&map)->max_entries; offset 76 on Linux 6.18).
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: accept
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+76]
    exit
