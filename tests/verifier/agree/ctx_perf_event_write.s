# A perf_event program writes sample_period.
# type: perf_event
# privileged: reject read-only
# unprivileged: reject need CAP_PERFMON
    stdw [%r1+168], 1
    mov %r0, 0
    exit
