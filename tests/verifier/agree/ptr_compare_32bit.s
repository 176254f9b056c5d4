# Comparing the low half of the context pointer.
# type: xdp
# privileged: accept
# unprivileged: reject 32-bit comparison involving a pointer
    mov %r0, 2
    jgt32 %r1, 5, out
    mov %r0, 1
out:
    exit
