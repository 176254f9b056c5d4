# __sk_buff.sk in a TC classifier: a struct bpf_sock_common or NULL, unreferenced; NULL-checked and its family read.
# type: tc
# privileged: accept
# unprivileged: accept
    ldxdw %r2, [%r1+168]
    jeq %r2, 0, out
    ldxw %r3, [%r2+4]
    ldxw %r4, [%r2+44]
out:
    mov %r0, 0
    exit
