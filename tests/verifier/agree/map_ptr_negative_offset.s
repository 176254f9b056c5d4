# A read before the start of the map's structure is refused.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: reject invalid negative access
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1-4]
    exit
