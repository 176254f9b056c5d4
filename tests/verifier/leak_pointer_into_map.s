# Storing a stack pointer into a map value.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets programs turn pointers into numbers; duet never does: in the userspace VM an address reveals the host process's memory layout
# map: array key=4 value=8 entries=1
# expect: would leak its address
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    stxdw [%r0+0], %r10
out:
    mov %r0, 2
    exit
