# Byte-swapping the context pointer.
# type: xdp
# privileged: accept
# unprivileged: reject byte swap of R0
    mov %r0, %r1
    be16 %r0
    and %r0, 3
    exit
