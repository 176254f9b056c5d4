# A branch a known comparison rules out holds an infinite loop: dead code to a privileged loader,
# but the kernel explores it speculatively for an unprivileged one, and a loop that never ends
# is not something a barrier can stop.
# type: xdp
# privileged: accept
# unprivileged: reject infinite loop
    mov %r7, 1
    jeq %r7, 1, a
loop:
    ja loop
a:
    mov %r0, 2
    exit
