# 10 / 2 is not folded by the kernel: division results are unknown numbers to it, so the branch
# that reads the uninitialised r8 is explored and refused (found by the verify_kernel fuzz target,
# as a 32-bit division duet had zero-extended).
# type: xdp
# privileged: reject R8 is read before
# unprivileged: reject R8 is read before
    mov %r1, 10
    div %r1, 2
    jeq %r1, 5, +1
    mov %r0, %r8
    mov %r0, 2
    exit
