# A packet pointer compared with data_end by a signed ordering: privileged only.
# type: xdp
# privileged: accept
# unprivileged: reject pointer-comparison
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    jsgt %r2, %r3, out
out:
    mov %r0, 2
    exit
