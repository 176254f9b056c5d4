# Storing a pointer into packet data.
# type: xdp
# kernel-caps: bpf
# why: the unprivileged rules (no CAP_PERFMON; duet: Config::unprivileged) forbid turning a pointer into a number; root's kernel, and duet by default, allow it; tests/verifier/agree checks both
# expect: would leak its address
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    stxdw [%r2+0], %r10
out:
    mov %r0, 2
    exit
