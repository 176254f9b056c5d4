# A sockmap lookup in a TC classifier yields a socket: NULL-checked, read and released.
# type: tc
# map: sockmap key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxw %r7, [%r0+4]
    ldxw %r8, [%r0+44]
    mov %r1, %r0
    call 86
out:
    mov %r0, 0
    exit
