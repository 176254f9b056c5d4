# A sign-extending 4-byte read of max_entries is a number.
# type: xdp
# map: hash key=4 value=8 entries=4
# privileged: accept
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxsw %r0, [%r1+76]
    exit
