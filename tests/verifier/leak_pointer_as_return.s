# Returning the context pointer.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets programs turn pointers into numbers; duet never does: in the userspace VM an address reveals the host process's memory layout
# expect: the program returns R0, which is the context pointer
    mov %r0, %r1
    exit
