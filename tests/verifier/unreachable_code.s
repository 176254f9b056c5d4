# Instructions no path reaches.
# type: xdp
# expect: can never run
    mov %r0, 2
    exit
    mov %r0, 1
    exit
