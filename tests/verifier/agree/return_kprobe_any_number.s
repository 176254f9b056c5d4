# A kprobe returning 42.
# type: kprobe
# privileged: accept
# unprivileged: reject kprobe programs need CAP_PERFMON
    mov %r0, 42
    exit
