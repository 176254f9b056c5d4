# bpf_trace_printk's format read from a ring buffer record.
# type: xdp
# map: ringbuf key=0 value=0 entries=4096
# privileged: accept
# unprivileged: reject needs CAP_PERFMON
    lddw %r1, map_fd 0
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r6, %r0
    stdw [%r6+0], 0x0a6968
    mov %r1, %r6
    mov %r2, 4
    call 6
    mov %r1, %r6
    mov %r2, 0
    call 133
out:
    mov %r0, 2
    exit
