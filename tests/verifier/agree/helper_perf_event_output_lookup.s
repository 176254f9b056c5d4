# bpf_map_lookup_elem on a perf event array.
# type: kprobe
# map: perf_event_array key=4 value=4 entries=1
# privileged: reject cannot be used with map
# unprivileged: reject need CAP_PERFMON
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r0, 0
    exit
