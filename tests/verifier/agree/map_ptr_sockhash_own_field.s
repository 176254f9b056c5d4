# A number field of struct bpf_shtab (offset 304 on Linux 6.18) read through a sockhash's handle.
# type: xdp
# map: sockhash key=4 value=8 entries=4
# privileged: accept
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+304]
    exit
