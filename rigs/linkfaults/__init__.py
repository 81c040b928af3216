"""Link faults: a fault-injecting TCP proxy per link of a rig, and the matrix built on it.

The proxy (`proxy.py`) stands between one client and one device port and can sever,
stall, delay, refuse and corrupt what passes, on command, so every link of a rig can be
broken on purpose while the emulator's ground truth shows what the table really did.
"""
