# Copying the low half of a pointer into a number.
# type: xdp
# kernel-caps: bpf
# expect: copying part of it would turn an address into a number
    mov32 %r0, %r1
    and %r0, 3
    exit
