# Passing a number where bpf_map_lookup_elem expects a map.
# type: xdp
# expect: expects a map handle in R1
    mov %r1, 0
    stxw [%r10-4], %r1
    mov %r2, %r10
    add %r2, -4
    mov %r1, 7
    call 1
    mov %r0, 2
    exit
