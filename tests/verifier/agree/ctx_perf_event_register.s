# A perf_event program reads regs.di.
# type: perf_event
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    ldxdw %r0, [%r1+112]
    exit
