# A sign-extending load (ldxsw) of XDP's `data`, as the verifier fuzz target against the kernel
# found: a field that holds a pointer has no sign-extending read.
# type: xdp
# privileged: reject sign-extending 4-byte load of
# unprivileged: reject sign-extending 4-byte load of
    ldxsw %r2, [%r1+0]
    mov %r0, 1
    exit
