# Comparing the context pointer with a number.
# type: xdp
# privileged: accept
# unprivileged: reject would reveal an address
    mov %r0, 2
    jgt %r1, 4096, out
    mov %r0, 1
out:
    exit
