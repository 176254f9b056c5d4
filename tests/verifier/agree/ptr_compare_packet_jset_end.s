# A packet pointer tested against data_end with jset: privileged only.
# type: xdp
# privileged: accept
# unprivileged: reject pointer-comparison
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    jset %r2, %r3, out
out:
    mov %r0, 2
    exit
