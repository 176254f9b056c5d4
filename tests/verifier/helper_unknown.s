# Calling a helper that does not exist.
# type: xdp
# expect: call to unknown helper #9999
    call 9999
    mov %r0, 2
    exit
