# Two packet pointers compared with each other (neither is data_end): privileged only.
# type: xdp
# privileged: accept
# unprivileged: reject pointer-comparison
    ldxw %r2, [%r1+0]
    mov %r3, %r2
    add %r3, 4
    jgt %r3, %r2, out
out:
    mov %r0, 2
    exit
