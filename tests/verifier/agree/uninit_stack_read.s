# Reading a stack slot never written: an unknown number to root.
# type: xdp
# privileged: accept
# unprivileged: reject which was never written
    ldxdw %r0, [%r10-8]
    and %r0, 3
    exit
