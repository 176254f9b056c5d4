# `r2 = r10; r2 += 0`: without CAP_PERFMON a stack pointer must stay inside the frame (-512..=-1), and offset 0 is its end.
# type: xdp
# privileged: accept
# unprivileged: reject outside the frame
    mov %r2, %r10
    add %r2, 0
    mov %r0, 2
    exit
