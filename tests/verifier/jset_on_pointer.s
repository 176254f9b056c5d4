# Testing bits of a pointer.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets programs turn pointers into numbers; duet never does: in the userspace VM an address reveals the host process's memory layout
# expect: would reveal an address
    mov %r0, 2
    jset %r1, 4, out
    mov %r0, 1
out:
    exit
