# struct bpf_array's own elem_size, just past its struct bpf_map (offset 296 on Linux 6.18), read through an array's handle.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: accept
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+296]
    exit
