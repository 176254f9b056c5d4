# A number field of struct xsk_map (offset 296 on Linux 6.18) read through an xskmap's handle.
# type: xdp
# map: xskmap key=4 value=4 entries=4
# privileged: accept
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+296]
    exit
