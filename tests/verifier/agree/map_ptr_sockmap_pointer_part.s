# The same offset in a sockmap's struct bpf_stab is inside a pointer: refused.
# type: xdp
# map: sockmap key=4 value=8 entries=4
# privileged: reject cannot access ptr member
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+304]
    exit
