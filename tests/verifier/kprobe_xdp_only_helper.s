# A kprobe calling bpf_redirect, which only XDP (and tc) programs have.
# type: kprobe
# expect: bpf_redirect is not available to kprobe programs
    mov %r1, 1
    mov %r2, 0
    call 23
    mov %r0, 0
    exit
