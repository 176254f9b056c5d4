# `if (p >= data_end) goto out; c = *p;` at a variable offset: the kernel learns no range from it.
# type: xdp
# expect: 1-byte packet read at offset 0 of R2 is not proven to lie before data_end
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    mov %r4, %r2
    add %r4, 4
    jgt %r4, %r3, out
    ldxw %r5, [%r2+0]
    and %r5, 0xff
    add %r2, %r5
    jge %r2, %r3, out
    ldxb %r0, [%r2+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
