# Exiting without setting the return value.
# type: xdp
# expect: exits without setting R0
    exit
