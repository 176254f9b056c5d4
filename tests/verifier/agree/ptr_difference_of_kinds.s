# Subtracting the context pointer from the frame pointer.
# type: xdp
# privileged: accept
# unprivileged: reject gives a number that reveals addresses
    mov %r0, %r10
    sub %r0, %r1
    and %r0, 3
    exit
