"""The pty null-modem behaves like a cable: bytes cross both ways unchanged whatever
each end's termios says, and an end nobody reads loses bytes instead of stalling the
other direction (an emulated gauge may stream into an unplugged line)."""

from __future__ import annotations

import os
import select
import time
import tty

import pytest
import serial

from rigs.emulator.nullmodem import PtyLink

pytestmark = pytest.mark.timeout(30)


def test_bytes_cross_both_ways_unchanged():
    with PtyLink() as link:
        # different baud rates on the two ends: a pty has no UART, only bytes cross
        a = serial.Serial(link.end_a, 115200, timeout=5)
        b = serial.Serial(link.end_b, 19200, timeout=5)
        try:
            a.write(b"?C\r")
            assert b.read(3) == b"?C\r"
            every_byte = bytes(range(256))  # raw: no CR/LF translation, no flow-control bytes eaten
            b.write(every_byte)
            assert a.read(256) == every_byte
        finally:
            a.close()
            b.close()


def test_an_unread_end_drops_bytes_instead_of_stalling_the_line():
    with PtyLink() as link:
        a = os.open(link.end_a, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(a)
        try:
            deadline = time.perf_counter_ns() + 20_000_000_000
            while link.dropped == 0:  # nobody holds end_b open: it fills up, then the link drops
                assert time.perf_counter_ns() < deadline, "the link never dropped bytes"
                os.write(a, b"x" * 65536)
            with serial.Serial(link.end_b, 19200, timeout=5) as b:
                b.write(b"pong")  # the other direction still flows
                ready, _, _ = select.select([a], [], [], 5.0)
                assert ready and os.read(a, 4) == b"pong"
        finally:
            os.close(a)
