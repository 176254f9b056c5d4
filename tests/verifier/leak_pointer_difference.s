# Subtracting the context pointer from the frame pointer, which yields an address difference.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid turning a pointer into a number; root's kernel, and duet by default, allow it; tests/verifier/agree checks both
# expect: gives a number that reveals addresses
    mov %r0, %r10
    sub %r0, %r1
    mov %r0, 2
    exit
