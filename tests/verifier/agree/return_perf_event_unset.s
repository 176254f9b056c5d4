# A perf_event program exits without setting R0.
# type: perf_event
# privileged: reject R0
# unprivileged: reject perf_event programs need CAP_PERFMON
    exit
