# Overwriting one byte of a pointer spilled to the stack.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel lets a program overwrite part of a spilled pointer (the rest becomes plain bytes); duet refuses, as that leaks the pointer's remaining bytes
# expect: overwrites part of a pointer spilled
    stxdw [%r10-8], %r1
    stb [%r10-8], 0
    mov %r0, 2
    exit
