# bpf_get_current_pid_tgid from a kprobe.
# type: kprobe
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    call 14
    exit
