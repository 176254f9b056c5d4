# A sockmap lookup in a kprobe: the socket can never be released there.
# type: kprobe
# map: sockmap key=4 value=8 entries=4
# privileged: reject unreleased reference
# unprivileged: reject need CAP_PERFMON
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r0, 0
    exit
