# Reading a stack slot that was never written.
# type: xdp
# kernel-caps: bpf
# expect: which was never written
    ldxdw %r0, [%r10-8]
    and %r0, 3
    exit
