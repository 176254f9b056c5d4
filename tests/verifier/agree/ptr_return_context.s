# Returning the context pointer as the verdict.
# type: xdp
# privileged: accept
# unprivileged: reject the program returns R0, which is the context pointer
    mov %r0, %r1
    exit
