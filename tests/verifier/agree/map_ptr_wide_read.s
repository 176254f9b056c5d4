# An 8-byte read of the 4-byte max_entries runs past the member: refused.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: reject access beyond the end of member max_entries
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxdw %r0, [%r1+76]
    exit
