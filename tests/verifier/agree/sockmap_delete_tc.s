# bpf_map_delete_elem on a sockmap from a TC classifier.
# type: tc
# map: sockmap key=4 value=8 entries=4
# privileged: accept
# unprivileged: accept
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 3
    mov %r0, 0
    exit
