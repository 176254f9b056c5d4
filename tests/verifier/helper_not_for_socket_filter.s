# A socket filter calling an XDP-only helper.
# type: socket_filter
# expect: bpf_xdp_adjust_head is not available to socket filter programs
    mov %r2, 4
    call 44
    mov %r0, 0
    exit
