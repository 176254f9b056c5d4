# One bpf_tail_call instruction reached with a different prog_array on each path. The kernel refuses this
# ("tail_call abusing map_ptr") only when the maps were created without CAP_PERFMON; this harness creates
# maps as root and drops CAP_PERFMON for the program load alone, so both modes accept, as duet does.
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
