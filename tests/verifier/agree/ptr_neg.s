# Negating the context pointer.
# type: xdp
# privileged: accept
# unprivileged: reject negation on R0
    mov %r0, %r1
    neg %r0
    and %r0, 3
    exit
