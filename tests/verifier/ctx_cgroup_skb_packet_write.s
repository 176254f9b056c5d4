# A cgroup_skb program writing packet data, which the kernel allows only TC classifiers (and XDP).
# type: cgroup_skb
# kernel: reject
# expect: may only read the packet
    ldxw %r2, [%r1+76]
    ldxw %r3, [%r1+80]
    mov %r4, %r2
    add %r4, 1
    jgt %r4, %r3, +1
    stb [%r2+0], 0
    mov %r0, 1
    exit
