# A second, redundant bound check guards an out-of-bounds read: the kernel checks that path too.
# type: xdp
# expect: 1-byte packet read at offset 100 of R2 is not proven to lie before data_end
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    jgt %r4, %r3, bad
    mov %r0, 2
    exit
bad:
    ldxb %r0, [%r2+100]
    exit
out:
    mov %r0, 2
    exit
