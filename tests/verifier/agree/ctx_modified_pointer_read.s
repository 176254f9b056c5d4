# A context pointer moved by a constant and then read: the kernel reads the context only at the
# instruction's offset from the pointer it passed, so it refuses this even to root.
# type: xdp
# privileged: reject dereference of modified ctx ptr R1 off=4
# unprivileged: reject dereference of modified ctx ptr R1 off=4
    add %r1, 4
    ldxw %r0, [%r1+0]
    exit
