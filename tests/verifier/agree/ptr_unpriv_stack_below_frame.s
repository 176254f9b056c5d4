# A stack pointer moved 520 bytes down, never used: out of the frame, refused without CAP_PERFMON.
# type: xdp
# privileged: accept
# unprivileged: reject outside the frame
    mov %r2, %r10
    add %r2, -520
    mov %r0, 2
    exit
