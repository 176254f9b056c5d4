# A 4-byte read at offset 12 after checking only 14 bytes (needs 16).
# type: xdp
# expect: is not proven to lie before data_end
# expect: check `data + 16 > data_end` first
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    ldxw %r0, [%r2+12]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
