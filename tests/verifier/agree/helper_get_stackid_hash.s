# bpf_get_stackid into a hash map.
# type: kprobe
# map: hash key=4 value=8 entries=4
# privileged: reject cannot be used with map
# unprivileged: reject kprobe programs need CAP_PERFMON
    lddw %r2, map_fd 0
    mov %r3, 0
    call 27
    exit
