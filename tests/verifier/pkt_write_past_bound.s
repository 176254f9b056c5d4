# Writing 2 bytes at offset 13 after checking 14 bytes.
# type: xdp
# expect: packet write at offset 13
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    sth [%r2+13], 0
out:
    mov %r0, 2
    exit
