# The task pointer bpf_get_current_task returns is a number, never dereferenced directly.
# type: kprobe
# privileged: reject not a pointer
# unprivileged: reject kprobe programs need CAP_PERFMON
    call 35
    ldxdw %r0, [%r0+16]
    exit
