# __sk_buff.sk returned as a number: a pointer leak only without CAP_PERFMON.
# type: tc
# privileged: accept
# unprivileged: reject returns R0, which is a socket that may be NULL
    ldxdw %r0, [%r1+168]
    exit
