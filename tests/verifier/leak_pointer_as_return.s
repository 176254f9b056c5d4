# Returning the context pointer.
# type: xdp
# kernel-caps: bpf
# expect: the program returns R0, which is the context pointer
    mov %r0, %r1
    exit
