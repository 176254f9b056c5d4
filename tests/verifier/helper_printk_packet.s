# Passing packet bytes as bpf_trace_printk's format, which may not read the packet.
# type: xdp
# expect: bpf_trace_printk is passed R1, a packet pointer
# expect: helper access to the packet is not allowed
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    mov %r1, %r2
    mov %r2, 14
    mov %r3, 0
    call 6
out:
    mov %r0, 2
    exit
