# bpf_get_current_uid_gid from a tracepoint.
# type: tracepoint
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    call 15
    exit
