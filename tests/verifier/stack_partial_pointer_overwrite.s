# Overwriting one byte of a pointer spilled to the stack.
# type: xdp
# kernel-caps: bpf
# expect: overwrites part of a pointer spilled
    stxdw [%r10-8], %r1
    stb [%r10-8], 0
    mov %r0, 2
    exit
