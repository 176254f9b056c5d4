# A map key containing a spilled pointer.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid turning a pointer into a number; root's kernel, and duet by default, allow it; tests/verifier/agree checks both
# map: hash key=8 value=8 entries=16
# expect: contains a pointer spilled to the stack
    stxdw [%r10-8], %r1
    mov %r2, %r10
    add %r2, -8
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
