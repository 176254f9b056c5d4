# A loop that never changes anything: it can never end.
# type: xdp
# expect: infinite loop
    mov %r0, 2
again:
    ja again
