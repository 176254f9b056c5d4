# Reading a stack slot that was never written.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel allows reading uninitialised stack; duet never does: the VM's stack holds bytes of earlier runs and other programs
# expect: which was never written
    ldxdw %r0, [%r10-8]
    and %r0, 3
    exit
