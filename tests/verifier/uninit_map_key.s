# Passing a map key whose bytes were never written.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid reading uninitialised stack; root's kernel, and duet by default, allow it (an unknown number); tests/verifier/agree checks both
# map: hash key=8 value=8 entries=16
# expect: was never written
    mov %r2, %r10
    add %r2, -8
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
