# bpf_probe_read_kernel_str of 65 bytes into a 64-byte map value.
# type: tracepoint
# map: array key=4 value=64 entries=1
# privileged: reject 65-byte write of the map `map0` value
# unprivileged: reject need CAP_PERFMON
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r1, %r0
    mov %r2, 65
    mov %r3, 0
    call 115
out:
    mov %r0, 0
    exit
