# Overwriting one byte of a pointer spilled to the stack.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid turning a pointer into a number; root's kernel, and duet by default, allow it; tests/verifier/agree checks both
# expect: overwrites part of a pointer spilled
    stxdw [%r10-8], %r1
    stb [%r10-8], 0
    mov %r0, 2
    exit
