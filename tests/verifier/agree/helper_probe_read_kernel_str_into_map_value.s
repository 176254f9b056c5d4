# bpf_probe_read_kernel_str into a map value from a tracepoint.
# type: tracepoint
# map: array key=4 value=64 entries=1
# privileged: accept
# unprivileged: reject need CAP_PERFMON
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r1, %r0
    mov %r2, 64
    mov %r3, 0
    call 115
out:
    mov %r0, 0
    exit
