# The same offset in a hash map's struct bpf_htab is part of a pointer member: refused.
# type: xdp
# map: hash key=4 value=8 entries=4
# privileged: reject cannot access ptr member
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+296]
    exit
