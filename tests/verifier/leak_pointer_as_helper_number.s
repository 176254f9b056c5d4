# Passing a pointer as map_update_elem's flags.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid turning a pointer into a number; root's kernel, and duet by default, allow it; tests/verifier/agree checks both
# map: hash key=4 value=8 entries=16
# expect: argument 4 must be a number
    mov %r1, 0
    stxw [%r10-4], %r1
    stdw [%r10-16], 0
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    mov %r4, %r10
    lddw %r1, map_fd 0
    call 2
    mov %r0, 2
    exit
