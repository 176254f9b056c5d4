# A 1-byte read inside max_entries is a number.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: accept
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxb %r0, [%r1+77]
    exit
