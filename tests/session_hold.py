"""Loaded into a child run (tests/child_run.py: `-p tests.session_hold`, or copied in as
its conftest.py): keeps the rig — and so the emulator it started — open at the end of the
session until the test has looked at the table (the emulator dies with the session; a
real table would not).

A session fixture set up after session_rig, so torn down before it: after every test's
own teardown has released the table, so it cannot help a release under test. It says it
is waiting with the file HOLD.waiting, and waits (bounded) for the file HOLD."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

HOLD_ENV = "CHILD_RUN_HOLD"
HOLD_MAX_S = 60.0


def waiting_path(hold: Path | str) -> Path:
    return Path(str(hold) + ".waiting")


@pytest.fixture(scope="session", autouse=True)
def hold_session_end(session_rig):
    yield
    hold = os.environ.get(HOLD_ENV)
    if not hold:
        return
    waiting_path(hold).touch()
    deadline = time.monotonic() + HOLD_MAX_S
    while not os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.01)
