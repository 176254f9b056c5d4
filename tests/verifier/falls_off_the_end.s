# The last instruction is not an exit.
# type: xdp
# expect: last instruction is not an exit or unconditional jump
    mov %r0, 2
