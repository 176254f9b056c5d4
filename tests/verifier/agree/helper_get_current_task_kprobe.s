# bpf_get_current_task from a kprobe, its result (an address, as a number) read with bpf_probe_read_kernel.
# type: kprobe
# privileged: accept
# unprivileged: reject kprobe programs need CAP_PERFMON
    call 35
    mov %r3, %r0
    add %r3, 16
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    call 113
    ldxdw %r0, [%r10-8]
    exit
