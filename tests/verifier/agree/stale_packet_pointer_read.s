# Reading through a packet pointer from before bpf_xdp_adjust_head is refused in both modes.
# type: xdp
# privileged: reject R7 is a packet pointer from before the packet-changing call at insn 4
# unprivileged: reject R7 is a packet pointer from before the packet-changing call at insn 4
    mov %r6, %r1
    ldxw %r7, [%r6+0]
    ldxw %r8, [%r6+4]
    mov %r2, -20
    call 44
    ldxb %r0, [%r7+0]
    mov %r0, 2
    exit
