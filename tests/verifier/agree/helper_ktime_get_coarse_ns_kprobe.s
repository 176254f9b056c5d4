# bpf_ktime_get_coarse_ns from a kprobe: the tracing types do not have it.
# type: kprobe
# privileged: reject not available to kprobe
# unprivileged: reject need CAP_PERFMON
    call 160
    mov %r0, 0
    exit
