# Reading egress_ifindex outside a devmap program.
# type: xdp
# expect: egress_ifindex is only readable by programs attached to a devmap
    ldxw %r0, [%r1+20]
    mov %r0, 2
    exit
