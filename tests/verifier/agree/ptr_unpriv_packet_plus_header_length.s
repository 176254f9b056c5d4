# The IPv4 header length as a packet offset (`tcp = (void *)ip + ip->ihl * 4`): a packet pointer plus a bounded register, which the kernel allows only with CAP_PERFMON.
# type: xdp
# privileged: accept
# unprivileged: reject an unprivileged loader may add registers only to stack and map value pointers
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 20
    jgt %r4, %r3, out
    ldxb %r5, [%r2+0]
    and %r5, 15
    lsh %r5, 2
    add %r2, %r5
    mov %r4, %r2
    add %r4, 1
    jgt %r4, %r3, out
    ldxb %r0, [%r2+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
