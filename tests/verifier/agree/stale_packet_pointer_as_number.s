# After bpf_xdp_adjust_head, the packet pointers from before are invalid. A privileged loader may
# still use them as numbers (the kernel makes them unknown scalars): here the old length,
# data_end - data, is computed after the call, as clang emits for a length read before it.
# Unprivileged, they are unreadable.
# type: xdp
# privileged: accept
# unprivileged: reject R7 is a packet pointer from before the packet-changing call at insn 4
    mov %r6, %r1
    ldxw %r7, [%r6+0]
    ldxw %r8, [%r6+4]
    mov %r2, -20
    call 44
    sub %r8, %r7
    mov %r0, 2
    exit
