# A map's kernel structure is read-only: a store to max_entries through the handle is refused.
# type: xdp
# map: array key=4 value=8 entries=4
# privileged: reject only read from bpf_array is supported
# unprivileged: reject is allowed only to CAP_PERFMON
    lddw %r1, map_fd 0
    stw [%r1+76], 1
    mov %r0, 0
    exit
