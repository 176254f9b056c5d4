# A perf_event program reads the low 4 bytes of sample_period.
# type: perf_event
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxw %r0, [%r1+168]
    exit
