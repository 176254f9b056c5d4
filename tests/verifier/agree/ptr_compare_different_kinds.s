# Comparing the context pointer with the frame pointer.
# type: xdp
# privileged: accept
# unprivileged: reject would reveal an address
    mov %r0, 2
    jeq %r1, %r10, out
    mov %r0, 1
out:
    exit
