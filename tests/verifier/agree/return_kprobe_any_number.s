# A kprobe returning 42.
# type: kprobe
# privileged: accept
# unprivileged: skip (the kernel loads kprobes only with CAP_PERFMON)
    mov %r0, 42
    exit
