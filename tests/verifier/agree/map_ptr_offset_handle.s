# A map handle cannot be moved: the field is read at the instruction's offset, not by arithmetic.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: reject addition on R1, a map handle
# unprivileged: reject addition on R1, a map handle
    lddw %r1, map_fd 0
    add %r1, 76
    ldxw %r0, [%r1+0]
    exit
