# A packet offset that may be negative (a byte minus 8).
# type: xdp
# expect: whose variable offset may be negative
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    mov %r4, %r2
    add %r4, 64
    jgt %r4, %r3, out
    ldxb %r5, [%r2+0]
    sub %r5, 8
    add %r2, %r5
    mov %r4, %r2
    add %r4, 1
    jgt %r4, %r3, out
    ldxb %r0, [%r2+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
