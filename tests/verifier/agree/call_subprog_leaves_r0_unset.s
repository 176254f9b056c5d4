# A static function that writes through its pointer argument and exits without setting R0
# (clang's code when every path returns the same constant): the caller sets r0 itself.
# type: xdp
# privileged: accept
# unprivileged: accept
    stdw [%r10-8], 0
    mov %r1, %r10
    add %r1, -8
    call local fill
    ldxdw %r0, [%r10-8]
    and %r0, 3
    exit
fill:
    stdw [%r1+0], 2
    exit
