# A perf_event program reads addr.
# type: perf_event
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxdw %r0, [%r1+176]
    exit
