# A jump past the end of the program.
# type: xdp
# expect: is outside the program
    mov %r0, 2
    ja +100
    exit
