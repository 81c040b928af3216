"""A minimal runner for tests/test_heartbeat.py: opens a rig, arms the heartbeat, holds a
force, prints what the test needs as one JSON line, then waits (renewing the heartbeat's
lease) to be killed, stopped, or deadlocked by SIGUSR1.

Run as `python -m tests.heartbeat_runner RIG_FILE FORCE_N`; the test SIGKILLs it and then
watches the table from outside: nothing this process set up may keep the table pulling.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from drivers import lease
from drivers.watchdog import HeartbeatKeeper
from rigs.processes import end_process
from tests.child_run import alive, end_pid, is_emulator  # noqa: F401 — alive: for the heartbeat tests
from rigs.config import load_rig
from rigs.rig import open_rig
from verification.spec import load_spec


def hold(rig_file: str, force_n: float):
    """Open the rig, feed its watchdog from a heartbeat process, pull to force_n and stay
    there; returns (rig, keeper, spec). The caller closes the rig (or is killed)."""
    config = load_rig(rig_file)
    spec = load_spec(config.table.specification)
    rig = open_rig(config)
    keeper = HeartbeatKeeper(rig.controller, spec.plan.watchdog_s, config.time_scale)
    try:
        keeper.arm()
        ctrl = rig.controller
        ctrl.reset()
        ctrl.set_ramp_rates(200.0, 200.0)
        ctrl.set_target_force(force_n)
        ctrl.enable()
        ctrl.start()
        deadline = time.monotonic() + 30.0
        while ctrl.status().force_n < 0.9 * force_n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the table did not reach {force_n} N within 30 s")
            time.sleep(0.01)
    except BaseException:
        rig.make_safe()
        keeper.stop()
        rig.close()
        raise
    return rig, keeper, spec


def _deadlock(signum, frame) -> None:
    """SIGUSR1: the main thread deadlocks (a lock taken twice), as a real bug would."""
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()


def main(rig_file: str, force_n: float) -> None:
    rig, keeper, spec = hold(rig_file, force_n)
    signal.signal(signal.SIGUSR1, _deadlock)
    print(json.dumps({"emulator": rig.endpoints, "heartbeat_pid": keeper.pid,
                      "watchdog_s": spec.plan.watchdog_s, "time_scale": rig.time_scale,
                      "lease_wall_s": keeper.lease_length_wall_s}), flush=True)
    while True:  # holding, and making progress: a bounded wait renews the heartbeat's lease
        lease.sleep(1.0)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))


# ---------------------------------------------------------------- what the tests share
@contextmanager
def held(rig_file: str, force_n: float):
    """`hold()` for a test: (rig, keeper, spec), released and closed afterwards."""
    rig, keeper, spec = hold(rig_file, force_n)
    try:
        yield rig, keeper, spec
    finally:
        rig.make_safe()
        keeper.stop()
        rig.close()


def start(rig_file: str, force_n: float, log: Path) -> tuple[subprocess.Popen, dict]:
    """This module as a child holding `force_n`; (the child, the JSON line it printed)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.heartbeat_runner", rig_file, str(force_n)],
                            cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
                            stderr=open(log, "w"), stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait(10.0)
        raise AssertionError(f"the runner printed nothing: {log.read_text()}")
    return proc, json.loads(line)


def finish(proc: subprocess.Popen, info: dict | None) -> None:
    """End the child however it was left (stopped, deadlocked, killed) and the emulator it
    orphaned, as a real table would outlive its runner."""
    end_process(proc)
    pid = (info or {}).get("emulator", {}).get("pid")
    if pid and is_emulator(pid):
        end_pid(pid)
