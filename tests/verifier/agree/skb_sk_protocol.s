# __sk_buff.sk is a struct bpf_sock_common: it has no protocol field.
# type: tc
# privileged: reject invalid struct bpf_sock_common access
# unprivileged: reject invalid struct bpf_sock_common access
    ldxdw %r2, [%r1+168]
    jeq %r2, 0, out
    ldxw %r3, [%r2+12]
out:
    mov %r0, 0
    exit
