# bpf_tail_call with a hash map instead of a prog_array.
# type: xdp
# map: hash key=4 value=4 entries=4
# expect: bpf_tail_call needs a prog_array map
    lddw %r2, map_fd 0
    mov %r3, 0
    call 12
    mov %r0, 2
    exit
