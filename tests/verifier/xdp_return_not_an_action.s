# An XDP program returning 7, which is no XDP action.
# type: xdp
# kernel: accept
# why: the kernel does not range-check XDP return values (an unknown action drops the packet and warns at run time); duet rejects a return value that can never be an action
# expect: returns 7, which is not an XDP action
    mov %r0, 7
    exit
