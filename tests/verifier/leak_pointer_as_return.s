# Returning the context pointer.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid turning a pointer into a number; root's kernel, and duet by default, allow it; tests/verifier/agree checks both
# expect: the program returns R0, which is the context pointer
    mov %r0, %r1
    exit
