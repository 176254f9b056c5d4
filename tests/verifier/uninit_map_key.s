# Passing a map key whose bytes were never written.
# type: xdp
# kernel-caps: bpf
# why: with CAP_PERFMON (root) the kernel allows reading uninitialised stack; duet never does: the VM's stack holds bytes of earlier runs and other programs
# map: hash key=8 value=8 entries=16
# expect: was never written
    mov %r2, %r10
    add %r2, -8
    lddw %r1, map_fd 0
    call 1
    mov %r0, 2
    exit
