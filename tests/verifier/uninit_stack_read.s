# Reading a stack slot that was never written.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid reading uninitialised stack; root's kernel, and duet by default, allow it (an unknown number); tests/verifier/agree checks both
# expect: which was never written
    ldxdw %r0, [%r10-8]
    and %r0, 3
    exit
