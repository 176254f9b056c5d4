# Comparing the context pointer with a number.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid turning a pointer into a number; root's kernel, and duet by default, allow it; tests/verifier/agree checks both
# expect: would reveal an address
    mov %r0, 2
    jgt %r1, 4096, out
    mov %r0, 1
out:
    exit
