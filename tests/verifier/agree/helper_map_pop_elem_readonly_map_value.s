# bpf_map_pop_elem into a value of a map programs may only read.
# type: xdp
# map: stack key=0 value=8 entries=16
# map: array key=4 value=8 entries=1 flags=0x80
# privileged: reject read-only for programs
# unprivileged: reject read-only for programs
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r2, %r0
    lddw %r1, map_fd 0
    call 88
out:
    mov %r0, 2
    exit
