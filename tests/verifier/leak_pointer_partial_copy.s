# Copying the low half of a pointer into a number.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid turning a pointer into a number; root's kernel, and duet by default, allow it; tests/verifier/agree checks both
# expect: copying part of it would turn an address into a number
    mov32 %r0, %r1
    and %r0, 3
    exit
