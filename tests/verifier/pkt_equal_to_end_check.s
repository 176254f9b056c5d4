# `data + 4 == data_end` as the bound: the kernel learns ranges from <, <=, >, >= only.
# type: xdp
# expect: 4-byte packet read at offset 0 of R2 is not proven to lie before data_end
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 4
    jne %r4, %r3, out
    ldxw %r0, [%r2+0]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
