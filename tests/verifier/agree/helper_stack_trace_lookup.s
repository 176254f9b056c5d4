# bpf_map_lookup_elem on a stack trace map: only bpf_get_stackid may use it from a program.
# type: tracepoint
# map: stack_trace key=4 value=1016 entries=128
# privileged: reject cannot be used with map
# unprivileged: reject tracepoint programs need CAP_PERFMON
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r0, 0
    exit
