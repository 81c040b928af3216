"""Ending a child the rig started, however it was left.

Why one place: the frozen-runner benchmark, the link-fault matrix and the tests stop their
runners on purpose (SIGSTOP, a deadlock); a stopped process ignores everything but SIGKILL
and SIGCONT, and a deadlocked one everything but SIGKILL, so ending one needs both, in order.
"""

from __future__ import annotations

import os
import signal
import subprocess


def end_process(proc: subprocess.Popen, wait_s: float = 10.0) -> None:
    """SIGCONT (a stopped process would not run its death), SIGKILL, then reap it."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    proc.kill()
    proc.wait(wait_s)
