# bpf_perf_event_output of packet bytes from XDP.
# type: xdp
# map: perf_event_array key=4 value=4 entries=1
# privileged: reject packet
# unprivileged: reject packet
    ldxw %r4, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r5, %r4
    add %r5, 8
    jgt %r5, %r3, out
    lddw %r2, map_fd 0
    lddw %r3, 0xffffffff
    mov %r5, 8
    call 25
out:
    mov %r0, 2
    exit
