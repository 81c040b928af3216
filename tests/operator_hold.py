"""Loaded into a child `rig run` (`-p tests.operator_hold`) by tests/test_operator.py: keeps
the rig — and so the emulator it started — open at the end of the session until the test
has looked at the table (the emulator dies with the session; a real table would not).

A session fixture set up after session_rig, so torn down before it: after every test's
own teardown has released the table, so it cannot help a release under test."""

from __future__ import annotations

import os
import time

import pytest

HOLD_ENV = "OPERATOR_TEST_HOLD"
HOLD_MAX_S = 60.0


@pytest.fixture(scope="session", autouse=True)
def hold_session_end(session_rig):
    yield
    hold = os.environ.get(HOLD_ENV)
    if not hold:
        return
    open(hold + ".waiting", "w").close()
    deadline = time.monotonic() + HOLD_MAX_S
    while not os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.01)
