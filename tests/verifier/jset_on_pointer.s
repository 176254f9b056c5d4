# Testing bits of a pointer.
# type: xdp
# kernel-caps: bpf
# expect: would reveal an address
    mov %r0, 2
    jset %r1, 4, out
    mov %r0, 1
out:
    exit
