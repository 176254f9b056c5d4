# A sign-extending load of `xdp_md.ingress_ifindex` (offset 12), a number: accepted.
# type: xdp
# privileged: accept
# unprivileged: accept
    ldxsw %r2, [%r1+12]
    mov %r0, 2
    exit
