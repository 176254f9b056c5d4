# A packet pointer used after bpf_xdp_adjust_head moved the packet.
# type: xdp
# expect: from before the packet-changing call
    mov %r6, %r1
    ldxw %r7, [%r1+0]
    ldxw %r8, [%r1+4]
    mov %r4, %r7
    add %r4, 14
    jgt %r4, %r8, out
    mov %r1, %r6
    mov %r2, 4
    call 44
    ldxb %r0, [%r7+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
