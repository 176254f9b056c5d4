# A loop whose counter is reset on every iteration.
# type: xdp
# expect: infinite loop
    mov %r0, 2
    mov %r1, 0
loop:
    mov %r1, 0
    add %r1, 1
    jlt %r1, 10, loop
    exit
