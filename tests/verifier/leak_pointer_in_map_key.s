# A map key containing a spilled pointer.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets programs turn pointers into numbers; duet never does: in the userspace VM an address reveals the host process's memory layout
# map: hash key=8 value=8 entries=16
# expect: contains a pointer spilled to the stack
    stxdw [%r10-8], %r1
    mov %r2, %r10
    add %r2, -8
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
