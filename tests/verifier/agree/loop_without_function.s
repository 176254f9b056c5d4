# bpf_loop needs a function of the program as its callback.
# type: xdp
# privileged: reject expects a function of the program in R2
# unprivileged: reject expects a function of the program in R2
    mov %r1, 10
    mov %r2, 0
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r0, 2
    exit
