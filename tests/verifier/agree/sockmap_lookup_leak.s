# A sockmap lookup's socket never released.
# type: cgroup_skb
# map: sockmap key=4 value=8 entries=4
# privileged: reject unreleased reference
# unprivileged: reject unreleased reference
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    ldxw %r7, [%r0+4]
out:
    mov %r0, 1
    exit
