# A socket filter puts __sk_buff.sk (NULL-checked) into a sockmap.
# type: socket_filter
# map: sockmap key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    ldxdw %r7, [%r1+168]
    jeq %r7, 0, out
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r7
    mov %r4, 0
    call 2
out:
    mov %r0, 0
    exit
