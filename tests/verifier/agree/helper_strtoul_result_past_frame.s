# bpf_strtoul's result slot runs past the frame.
# type: xdp
# privileged: reject outside the 512-byte frame
# unprivileged: reject outside the frame (-512..=-1)
    stdw [%r10-8], 0x3234
    mov %r1, %r10
    add %r1, -8
    mov %r2, 2
    mov %r3, 0
    mov %r4, %r10
    add %r4, -520
    call 106
    mov %r0, 2
    exit
