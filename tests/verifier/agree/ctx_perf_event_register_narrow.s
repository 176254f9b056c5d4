# A perf_event program reads 4 bytes of regs.di.
# type: perf_event
# privileged: reject 8 bytes at a time
# unprivileged: reject need CAP_PERFMON
    ldxw %r0, [%r1+112]
    exit
