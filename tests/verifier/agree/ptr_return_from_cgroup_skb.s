# A cgroup_skb program returning a pointer: its return value is range-checked, so even root may not.
# type: cgroup_skb
# privileged: reject R0 is not a known value
# unprivileged: reject R0 is not a known value
    mov %r0, %r1
    exit
