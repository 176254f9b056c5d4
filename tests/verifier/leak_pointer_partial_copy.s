# Copying the low half of a pointer into a number.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets programs turn pointers into numbers; duet never does: in the userspace VM an address reveals the host process's memory layout
# expect: copying part of it would turn an address into a number
    mov32 %r0, %r1
    and %r0, 3
    exit
