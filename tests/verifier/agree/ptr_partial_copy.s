# Copying the low half of the context pointer into a number.
# type: xdp
# privileged: accept
# unprivileged: reject copying part of it would turn an address into a number
    mov32 %r0, %r1
    and %r0, 3
    exit
