# A perf_event program reads past struct bpf_perf_event_data.
# type: perf_event
# privileged: reject past the end
# unprivileged: reject need CAP_PERFMON
    ldxdw %r0, [%r1+184]
    exit
