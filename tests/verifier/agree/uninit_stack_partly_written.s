# Reading 8 bytes of which only 4 were written.
# type: xdp
# privileged: accept
# unprivileged: reject which was never written
    stw [%r10-8], 1
    ldxdw %r0, [%r10-8]
    and %r0, 3
    exit
