# A legacy packet load in an XDP program.
# type: xdp
# expect: legacy packet loads (ldabs/ldind) are not allowed in XDP programs
    mov %r6, %r1
    ldabsb 12
    mov %r0, 2
    exit
