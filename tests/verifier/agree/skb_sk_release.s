# __sk_buff.sk holds no reference: bpf_sk_release of it is refused.
# type: tc
# privileged: reject bpf_sk_release
# unprivileged: reject bpf_sk_release
    ldxdw %r1, [%r1+168]
    jeq %r1, 0, out
    call 86
out:
    mov %r0, 0
    exit
