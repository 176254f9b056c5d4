# bpf_strtol writes its result: not into a BPF_F_RDONLY_PROG map's value.
# type: xdp
# map: array key=4 value=8 entries=1 flags=0x80
# privileged: reject read-only
# unprivileged: reject read-only
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    jeq %r0, 0, out
    mov %r4, %r0
    stdw [%r10-16], 0x3234
    mov %r1, %r10
    add %r1, -16
    mov %r2, 2
    mov %r3, 0
    call 105
out:
    mov %r0, 2
    exit
