# Comparing the context pointer with a number.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets programs turn pointers into numbers; duet never does: in the userspace VM an address reveals the host process's memory layout
# expect: would reveal an address
    mov %r0, 2
    jgt %r1, 4096, out
    mov %r0, 1
out:
    exit
