# Storing a pointer into packet data.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets programs turn pointers into numbers; duet never does: in the userspace VM an address reveals the host process's memory layout
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
