# Adding a variable offset to a checked packet pointer forgets the check.
# type: xdp
# expect: includes a variable offset
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    ldxb %r5, [%r2+0]
    and %r5, 7
    add %r2, %r5
    ldxb %r0, [%r2+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
