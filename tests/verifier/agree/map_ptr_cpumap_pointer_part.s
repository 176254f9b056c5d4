# The same offset in a cpumap's struct bpf_cpu_map is a pointer member, read in half: refused.
# type: xdp
# map: cpumap key=4 value=4 entries=4
# privileged: reject cannot access ptr member
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+296]
    exit
