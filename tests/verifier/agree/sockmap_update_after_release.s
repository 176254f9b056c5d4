# A socket put into a sockmap after bpf_sk_release gave it back.
# type: tc
# map: sockmap key=4 value=8 entries=4
# privileged: reject bpf_map_update_elem expects a socket in R3, found a number
# unprivileged: reject a socket that was already released
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
    mov %r1, %r0
    call 86
    stw [%r10-20], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -20
    mov %r3, %r7
    mov %r4, 0
    call 2
out:
    mov %r0, 0
    exit
