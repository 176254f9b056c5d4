# bpf_map_pop_elem into the packet.
# type: tc
# map: stack key=0 value=8 entries=16
# privileged: reject packet
# unprivileged: reject packet
    ldxw %r2, [%r1+76]
    ldxw %r3, [%r1+80]
    mov %r4, %r2
    add %r4, 8
    jgt %r4, %r3, out
    lddw %r1, map_fd 0
    call 88
out:
    mov %r0, 0
    exit
