# Testing a bit of the context pointer.
# type: xdp
# privileged: accept
# unprivileged: reject would reveal an address
    mov %r0, 2
    jset %r1, 4, out
    mov %r0, 1
out:
    exit
