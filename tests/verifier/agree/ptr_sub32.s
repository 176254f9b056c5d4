# 32-bit subtraction from the context pointer gives a meaningless number.
# type: xdp
# privileged: accept
# unprivileged: reject 32-bit arithmetic on R0
    mov %r0, %r1
    sub32 %r0, 1
    and %r0, 3
    exit
