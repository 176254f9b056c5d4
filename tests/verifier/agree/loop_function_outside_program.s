# A callback loaded from outside the program.
# type: xdp
# privileged: reject is outside the program
# unprivileged: reject is outside the program
    mov %r1, 10
    lddw %r2, func 100
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r0, 2
    exit
