# max_entries reads as an unknown number, not the map's size: used unchecked as an index into a value it is refused.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: reject with an unbounded offset ((umax=4294967295))
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    ldxw %r6, [%r1+76]
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    add %r0, %r6
    ldxb %r0, [%r0+0]
out:
    mov %r0, 0
    exit
