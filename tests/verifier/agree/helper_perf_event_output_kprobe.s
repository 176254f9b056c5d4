# bpf_perf_event_output of a stack record from a kprobe.
# type: kprobe
# map: perf_event_array key=4 value=4 entries=1
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    stdw [%r10-8], 7
    lddw %r2, map_fd 0
    lddw %r3, 0xffffffff
    mov %r4, %r10
    add %r4, -8
    mov %r5, 8
    call 25
    mov %r0, 0
    exit
