# bpf_ringbuf_query(ringbuf, BPF_RB_AVAIL_DATA) from a kprobe.
# type: kprobe
# map: ringbuf key=0 value=0 entries=4096
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    lddw %r1, map_fd 0
    mov %r2, 0
    call 134
    mov %r0, 0
    exit
