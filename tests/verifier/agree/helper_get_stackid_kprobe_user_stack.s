# bpf_get_stackid of the user stack (BPF_F_USER_STACK) from a kprobe.
# type: kprobe
# map: stack_trace key=4 value=1016 entries=128
# privileged: accept
# unprivileged: reject kprobe programs need CAP_PERFMON
    lddw %r2, map_fd 0
    mov %r3, 256
    call 27
    exit
