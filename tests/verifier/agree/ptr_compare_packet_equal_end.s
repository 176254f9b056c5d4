# A packet pointer compared for equality with data_end: privileged only (the kernel learns nothing from it).
# type: xdp
# privileged: accept
# unprivileged: reject pointer-comparison
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    jeq %r2, %r3, out
out:
    mov %r0, 2
    exit
