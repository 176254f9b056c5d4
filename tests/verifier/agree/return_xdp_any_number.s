# An XDP program returning a random 32-bit number, or -1.
# type: xdp
# privileged: accept
# unprivileged: accept
    call 7
    jgt %r0, 100, out
    mov %r0, -1
out:
    exit
