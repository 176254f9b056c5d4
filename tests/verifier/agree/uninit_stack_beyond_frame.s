# Reading below the 512-byte frame is refused even to root.
# type: xdp
# privileged: reject outside the 512-byte frame
# unprivileged: reject outside the 512-byte frame
    ldxdw %r0, [%r10-520]
    and %r0, 3
    exit
