# One bpf_tail_call instruction reached with a different prog_array on each path. The kernel has a
# refusal for this ("tail_call abusing map_ptr", for maps it masks against speculation) that this harness
# does not trigger: with maps created by root and CAP_PERFMON dropped for the program load only, both
# modes accept, as duet does.
# type: xdp
# map: prog_array key=4 value=4 entries=4
# map: prog_array key=4 value=4 entries=4
# privileged: accept
# unprivileged: accept
    mov %r6, %r1
    ldxw %r3, [%r1+12]
    lddw %r2, map_fd 0
    jeq %r3, 0, join
    lddw %r2, map_fd 1
join:
    mov %r1, %r6
    mov %r3, 0
    call 12
    mov %r0, 2
    exit
