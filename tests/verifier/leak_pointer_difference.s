# Subtracting the context pointer from the frame pointer, which yields an address difference.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets programs turn pointers into numbers; duet never does: in the userspace VM an address reveals the host process's memory layout
# expect: gives a number that reveals addresses
    mov %r0, %r10
    sub %r0, %r1
    mov %r0, 2
    exit
