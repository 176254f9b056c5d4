# __sk_buff.sk cannot be written.
# type: tc
# privileged: reject __sk_buff
# unprivileged: reject __sk_buff
    stdw [%r1+168], 0
    mov %r0, 0
    exit
