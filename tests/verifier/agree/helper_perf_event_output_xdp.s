# bpf_perf_event_output of a stack buffer from a xdp program.
# type: xdp
# map: perf_event_array key=4 value=4 entries=1
# privileged: accept
# unprivileged: accept
    stdw [%r10-8], 7
    lddw %r2, map_fd 0
    lddw %r3, 0xffffffff
    mov %r4, %r10
    add %r4, -8
    mov %r5, 8
    call 25
    mov %r0, 1
    exit
