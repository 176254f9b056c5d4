# The infinite loop sits behind two known comparisons: the kernel's speculative exploration
# follows a ruled-out branch within a speculative path too.
# type: xdp
# privileged: accept
# unprivileged: reject infinite loop
    mov %r7, 1
    mov %r6, 5
    jeq %r7, 1, a
    jeq %r6, 5, b
loop:
    ja loop
b:
    mov %r0, 2
    exit
a:
    mov %r0, 2
    exit
