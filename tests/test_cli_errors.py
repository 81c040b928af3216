"""Errors a test engineer reads: one line, naming the device, the link and the phase, and
the exit status the README documents.

A link fault mid-run must not be a screen of pytest traceback, advice meant for a
connection that never worked must not be given for one that stopped, and the same kind
of bad input must give the same exit status in every command.
"""

from __future__ import annotations

import pytest

from drivers.controller import TractionController
from drivers.watchdog import HeartbeatError, HeartbeatKeeper


def test_the_heartbeat_process_error_keeps_its_dash():
    """The beat process writes its one line in UTF-8; read as ASCII, the dash before the
    fix became three replacement characters."""
    dead = TractionController(host="127.0.0.1", port=1, timeout_s=0.5)  # nothing listens on port 1
    keeper = HeartbeatKeeper(dead, 3.0, 10.0)
    with pytest.raises(HeartbeatError) as err:
        keeper._spawn()
    text = str(err.value)
    assert "cannot connect — check the host/port" in text
    assert "\ufffd" not in text
    assert keeper.process.wait(5.0) == 2
