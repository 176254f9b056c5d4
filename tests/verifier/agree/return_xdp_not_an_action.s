# An XDP program returning 7, which is no XDP action: the kernel checks no range (an unknown action drops the packet at run time).
# type: xdp
# privileged: accept
# unprivileged: accept
    mov %r0, 7
    exit
