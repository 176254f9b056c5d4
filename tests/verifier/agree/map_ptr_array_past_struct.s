# A read past the end of struct bpf_array (312 bytes on Linux 6.18) is refused.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: reject access beyond struct bpf_array
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+312]
    exit
