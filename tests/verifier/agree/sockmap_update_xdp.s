# bpf_map_update_elem puts a looked-up socket into a sockmap from XDP.
# type: xdp
# map: sockmap key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    mov %r6, %r1
    stdw [%r10-16], 0
    stdw [%r10-8], 0
    mov %r1, %r6
    mov %r2, %r10
    add %r2, -16
    mov %r3, 12
    mov %r4, -1
    mov %r5, 0
    call 84
    jeq %r0, 0, out
    mov %r7, %r0
    stw [%r10-20], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -20
    mov %r3, %r7
    mov %r4, 0
    call 2
    mov %r1, %r7
    call 86
out:
    mov %r0, 0
    exit
