# struct bpf_queue_stack ends in a flexible byte array: reads past the struct's size are bytes of it.
# type: xdp
# map: queue key=0 value=4 entries=4
# privileged: accept
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r0, [%r1+320]
    exit
