# bpf_map_lookup_elem on a prog_array, which only bpf_tail_call may use.
# type: xdp
# map: prog_array key=4 value=4 entries=4
# expect: cannot be used with map `map0` of type prog_array
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
