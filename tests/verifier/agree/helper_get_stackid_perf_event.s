# bpf_get_stackid of the sampled stack into a stack trace map, from a perf_event program.
# type: perf_event
# map: stack_trace key=4 value=1016 entries=128
# privileged: accept
# unprivileged: reject perf_event programs need CAP_PERFMON
    mov %r6, %r1
    lddw %r2, map_fd 0
    mov %r3, 0
    call 27
    exit
