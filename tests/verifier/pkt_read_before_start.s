# Reading one byte before the packet's start.
# type: xdp
# expect: bytes before the pointer's base
    ldxw %r2, [%r1+0]          # data
    ldxw %r3, [%r1+4]          # data_end
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, out
    ldxb %r0, [%r2-1]
    and %r0, 3
    exit
out:
    mov %r0, 2
    exit
