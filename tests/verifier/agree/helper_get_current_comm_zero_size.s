# bpf_get_current_comm with size 0.
# type: kprobe
# privileged: reject may be zero
# unprivileged: reject need CAP_PERFMON
    mov %r1, %r10
    add %r1, -16
    mov %r2, 0
    call 16
    mov %r0, 0
    exit
