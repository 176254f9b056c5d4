# `value == 0` on a checked map value is decided: its NULL branch is dead and not verified.
# type: tc
# map: array key=4 value=8 entries=1
# map: ringbuf key=0 value=0 entries=4096
# privileged: accept
# unprivileged: accept
    mov %r9, %r1
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, none
    mov %r6, %r0
    jeq %r6, 0, bad
    mov %r0, 0
    exit
none:
    mov %r0, 0
    exit
bad:
    ldxdw %r0, [%r10-64]
    ldxdw %r0, [%r8+0]
    mov %r0, 0
    exit
