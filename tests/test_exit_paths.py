"""The safety proof of the plugin's exit paths, against the emulated table in a subprocess.

A child `python -m pytest` opens the shipped emulated lumbar rig (the plugin starts its own
emulator), starts a slow ramp and then ends in one of the ways a session can end: SIGINT
(Ctrl-C), SIGTERM, SIGKILL, a failing test, an exception in a fixture, a pytest-timeout
(signal method, and the thread method that ends the interpreter with os._exit). This
process reads the emulator's endpoints from the child's run record, watches the force
through its own Modbus link and shows that the table is released — below the residual
force within the time the specification allows — on every path.

The child is started, read and ended by tests/child_run.py. Two arrangements keep the
observation possible and the child honest:
* a plugin of the child (tests/session_hold.py) holds the end of the session (a session
  fixture torn down just before the plugin's) until this process has looked: the emulator
  dies with the session, a real table would not. It runs after every release under test
  was commanded, so it cannot help the release.
* after SIGKILL / os._exit the emulator (a grandchild) is orphaned and keeps serving: the
  controller's watchdog releases the table; afterwards it is ended with what is left of
  the child's process group.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.controller import TractionController
from drivers.lease import lease_length_s
from drivers.tcm1 import FaultCode, Phase
from reports.rundir import Event, RecordRead
from rigs.config import load_rig
from tests.child_run import HOLD_ARGS, REPO, ChildRun, alive, is_emulator
from verification.spec import load_spec

RIG_FILE = REPO / "rigs" / "emulated-lumbar.yaml"
RIG = load_rig(RIG_FILE)
SPEC = load_spec(RIG.table.specification)
K = RIG.time_scale
RESIDUAL_N = SPEC.residual_force_n
RELEASE_TABLE_S = SPEC.requirement("ER-RESIDUAL").limits()[1]  # below the residual force within 3 s
WATCHDOG_TABLE_S = SPEC.plan.watchdog_s
#: wall seconds allowed on top of the specified time: signal delivery and handling, the
#: observer's polling and process scheduling on a loaded machine
MARGIN_WALL_S = 2.0
MID_RAMP_N = 50.0
START_TIMEOUT_S = 30.0

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

CHILD_TESTS = '''
import os
import time

import pytest

TARGET_N, RATE_N_S = 400.0, 10.0  # 40 s of table time: 4 s of wall time at K = 10
GO = os.environ["EXIT_PATH_GO"]


def start_ramp(bench):
    bench.configure(TARGET_N, RATE_N_S)
    bench.ctrl.start()


def mid_ramp(bench):
    """Ramping, above 60 N, and the observer has seen it (it says so with the GO file)."""
    start_ramp(bench)
    bench.wait(lambda s: s.force_n > 60.0, 20.0, "mid-ramp")
    deadline = time.monotonic() + 20.0
    while not os.path.exists(GO) and time.monotonic() < deadline:
        time.sleep(0.005)


def test_interrupted(bench):
    start_ramp(bench)
    bench.sleep(600)  # a signal from outside ends this (a bounded wait: it renews the heartbeat's lease)


def test_fails(bench):
    mid_ramp(bench)
    assert False, "deliberate failure mid-ramp"


@pytest.fixture
def ramping(bench):
    mid_ramp(bench)
    raise RuntimeError("deliberate fixture error mid-ramp")


def test_fixture_error(ramping):
    pass


def test_links_die(bench):
    """Mid-ramp every link of the rig is gone at once (both controller links, the gauge and
    the stimulus module): nothing can command the release or read the force."""
    from drivers.controller import TractionController

    mid_ramp(bench)
    rig = bench.rig
    rig.safety = TractionController(host="127.0.0.1", port=1, timeout_s=0.2, name="traction controller (safety link)")
    rig.controller = TractionController(host="127.0.0.1", port=1, timeout_s=0.2, name="traction controller (test link)")
    rig.gauge = rig.stimulus = None
    assert False, "every link of the rig is gone"


def test_never_runs_after_an_unconfirmed_release(bench):
    pass


@pytest.mark.timeout(2, method="signal", func_only=True)
def test_timeout_signal(bench):
    start_ramp(bench)
    bench.sleep(600)


@pytest.mark.timeout(1, method="thread", func_only=True)
def test_timeout_thread(bench):
    start_ramp(bench)
    bench.sleep(600)
'''


@dataclass
class Observation:
    peak_n: float = 0.0
    released_after_s: float | None = None  # wall seconds from the reference instant
    samples: list = field(default_factory=list)


class Child:
    """One child pytest session on the emulated rig (tests/child_run.py), observed from
    this process through a controller link of its own."""

    def __init__(self, run: ChildRun, tmp: Path) -> None:
        self.run = run
        self.tmp = tmp
        self.endpoints: dict | None = None
        self.ctrl: TractionController | None = None

    # ------------------------------------------------------------ child side
    def output(self) -> str:
        return self.run.output()

    def record(self) -> RecordRead:
        return self.run.record()

    def wait_run_start(self) -> dict:
        start = self.run.run_start(START_TIMEOUT_S)
        self.endpoints = start.emulator
        assert self.endpoints and is_emulator(self.endpoints["pid"])
        self.ctrl = self.run.controller("observer")
        return start.line

    def wait_holding(self, timeout_s: float = 30.0) -> None:
        """Until the child sits in its held end of session."""
        self.run.wait_holding(timeout_s)

    def go(self) -> None:
        """Tell a child waiting mid-ramp (`mid_ramp`) that it has been seen: it may fail now."""
        (self.tmp / "go").touch()

    def let_go(self, timeout_s: float = 30.0) -> int:
        self.run.let_go()
        return self.run.wait(timeout_s)

    # ------------------------------------------------------------ table side
    def wait_mid_ramp(self, timeout_s: float = 20.0):
        last = []

        def ramping():
            last[:] = [self.ctrl.status()]
            return last[0] if last[0].force_n > MID_RAMP_N and last[0].phase is Phase.RAMP_UP else None

        return self.run.wait_for(ramping, lambda: f"a ramp above {MID_RAMP_N} N (last status {last})", timeout_s,
                                 poll_s=0.002)

    def watch_release(self, since: float, timeout_s: float, obs: Observation | None = None) -> Observation:
        """Poll the force until it is below the residual force; times from `since` (perf_counter)."""
        obs = obs or Observation()
        deadline = since + timeout_s
        while True:
            st = self.ctrl.status()
            now = time.perf_counter()
            obs.samples.append((now - since, st.force_n))
            obs.peak_n = max(obs.peak_n, st.force_n)
            if st.force_n < RESIDUAL_N:
                obs.released_after_s = now - since
                return obs
            if now > deadline:
                return obs
            time.sleep(0.001)

    def status(self):
        return self.ctrl.status()

    def wait_status(self, predicate, timeout_s: float, what: str):
        last = []

        def check():
            last[:] = [self.ctrl.status()]
            return last[0] if predicate(last[0]) else None

        return self.run.wait_for(check, lambda: f"{what} (last status {last})", timeout_s, poll_s=0.005,
                                 while_running=False)


@pytest.fixture
def child(tmp_path, child_run):
    def start(test: str) -> Child:
        (tmp_path / "test_child.py").write_text(CHILD_TESTS, encoding="utf-8")
        run = child_run(
            # option values joined with "=": a separate path argument would take part in
            # pytest's rootdir search and make this repository the child's rootdir
            [sys.executable, "-m", "pytest", *([f"test_child.py::{test}"] if " " not in test else ["test_child.py", "-k", test]),
             f"--rig={RIG_FILE}", f"--run-dir={tmp_path / 'runs'}", *HOLD_ARGS, "-p", "no:cacheprovider", "-q", "-rA"],
            cwd=tmp_path, env={"EXIT_PATH_GO": str(tmp_path / "go")}, hold=True, name="the child pytest session")
        return Child(run, tmp_path)

    yield start
    (tmp_path / "go").touch()  # a child still waiting mid-ramp may go on to its end (then child_run ends it)


def report(request, what: str, value) -> None:
    """Measured figures go to the test's report (junitxml properties), not into timing asserts."""
    request.node.user_properties.append((what, value))


# ---------------------------------------------------------------- signals
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_ramp_releases_the_table(child, sig, request):
    c = child("test_interrupted")
    c.wait_run_start()
    before = c.wait_mid_ramp()
    sent = time.perf_counter()
    c.run.send_signal(sig)
    limit = RELEASE_TABLE_S / K + MARGIN_WALL_S
    obs = c.watch_release(sent, limit)
    assert obs.released_after_s is not None, (
        f"force still {obs.samples[-1][1]:.1f} N {limit:.2f} s after {sig.name} (residual {RESIDUAL_N} N)"
    )
    # the release was the plugin's emergency stop, not the watchdog: its first trigger is kept
    c.wait_holding()
    assert not c.record().of(Event.RUN_END), (
        "the plugin closed the rig before the interrupted test's fixtures were torn down"
    )
    # ENABLE 0 written during the emergency release de-energises the drive when it ends
    st = c.wait_status(lambda s: not s.enabled, RELEASE_TABLE_S / K + MARGIN_WALL_S, "drive off")
    assert st.force_n < RESIDUAL_N
    assert st.estop_latched and st.fault_code is FaultCode.ESTOP
    assert not st.watchdog_tripped
    rc = c.let_go()
    assert rc == pytest.ExitCode.INTERRUPTED, c.output()
    record = c.record()
    safe = record.of(Event.SAFE_STATE)
    assert safe[0]["reason"] == f"signal {sig.name}" and safe[0]["problems"] == []
    assert [e["reason"] for e in safe[1:]] == ["after test", "session end"]
    assert all(e["problems"] == [] for e in safe), safe  # every release reached the controller
    assert record.events[-1]["event"] == Event.RUN_END and record.events[-1]["complete"] is False
    assert record.events[-1]["exitstatus"] == 2
    assert not alive(c.endpoints["pid"])  # the session stopped its emulator
    report(request, "force at signal (N)", before.force_n)
    report(request, "peak after signal (N)", obs.peak_n)
    report(request, "below residual after (wall s)", obs.released_after_s)


def test_sigkill_mid_ramp_watchdog_releases_the_table(child, request):
    c = child("test_interrupted")
    beats = c.wait_run_start()["heartbeat"]["pid"]
    assert alive(beats)
    before = c.wait_mid_ramp()
    sent = time.perf_counter()
    assert c.run.kill() == -signal.SIGKILL
    assert alive(c.endpoints["pid"]), "the emulator died with its parent: nothing left to observe"
    # the heartbeat process ended with its parent: nothing feeds the watchdog any more
    c.run.wait_for(lambda: not alive(beats), "the end of the heartbeat process with its SIGKILLed parent", 5.0,
                   poll_s=0.01, while_running=False)
    # nobody commands anything now: the controller's watchdog must notice, then release
    limit = (WATCHDOG_TABLE_S + RELEASE_TABLE_S) / K + MARGIN_WALL_S
    obs = c.watch_release(sent, limit)
    assert obs.released_after_s is not None, (
        f"force still {obs.samples[-1][1]:.1f} N {limit:.2f} s after SIGKILL (residual {RESIDUAL_N} N)"
    )
    st = c.status()
    assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG
    assert st.phase in (Phase.EMERGENCY_RELEASE, Phase.IDLE)
    # the force never rose after the watchdog tripped: it is still below the residual force
    time.sleep(RELEASE_TABLE_S / K)
    assert c.status().force_n < RESIDUAL_N
    record = c.record()
    assert record.of(Event.SAFE_STATE) == []  # the process had no chance: the device did it
    assert record.events[-1]["event"] != Event.RUN_END
    report(request, "force at signal (N)", before.force_n)
    report(request, "below residual after (wall s)", obs.released_after_s)


def test_sigstop_mid_ramp_the_lease_runs_out_and_the_watchdog_releases(child, request):
    """A runner that exists but makes no progress (SIGSTOP; a debugger stop, a deadlock and a
    stuck call look the same from outside): its heartbeat process lives on, the lease it
    reads runs out, and the controller's watchdog releases the table."""
    c = child("test_interrupted")
    start = c.wait_run_start()
    beats = start["heartbeat"]["pid"]
    before = c.wait_mid_ramp()
    sent = time.perf_counter()
    c.run.pause()
    try:
        lease_s = lease_length_s(WATCHDOG_TABLE_S / K)
        limit = (WATCHDOG_TABLE_S + RELEASE_TABLE_S) / K + lease_s + MARGIN_WALL_S
        obs = c.watch_release(sent, limit)
        assert obs.released_after_s is not None, (
            f"force still {obs.samples[-1][1]:.1f} N {limit:.2f} s after SIGSTOP (residual {RESIDUAL_N} N)")
        st = c.status()
        assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG, st
        assert alive(beats)  # not a death: the lease stopped the beats
    finally:
        c.run.resume()
    # woken, the runner is ended the usual way; the table stays released throughout
    c.run.send_signal(signal.SIGTERM)
    c.wait_holding()
    assert c.status().force_n < RESIDUAL_N
    c.let_go()
    safe = c.record().of(Event.SAFE_STATE)
    assert safe and safe[0]["reason"] == "signal SIGTERM" and all(e["confirmed"] for e in safe), safe
    report(request, "force at SIGSTOP (N)", before.force_n)
    report(request, "below residual after SIGSTOP (wall s)", obs.released_after_s)


def test_timeout_thread_method_os_exit_watchdog_releases_the_table(child, request):
    # pytest-timeout's thread method ends the interpreter with os._exit: no cleanup runs
    c = child("test_timeout_thread")
    c.wait_run_start()
    c.wait_mid_ramp()
    c.run.wait_for(lambda: not c.run.running, "the timeout ending the child", 20.0, poll_s=0.002,
                   while_running=False)
    exited = time.perf_counter()
    assert c.run.poll() == 1
    assert "Timeout" in c.output()
    obs = c.watch_release(exited, (WATCHDOG_TABLE_S + RELEASE_TABLE_S) / K + MARGIN_WALL_S)
    assert obs.released_after_s is not None, f"force still {obs.samples[-1][1]:.1f} N"
    st = c.status()
    assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG
    assert c.record().of(Event.SAFE_STATE) == []
    report(request, "below residual after exit (wall s)", obs.released_after_s)


# ---------------------------------------------------------------- failures inside the session
@pytest.mark.parametrize(
    "test, when, text",
    [
        ("test_fails", "call", "deliberate failure mid-ramp"),
        ("test_fixture_error", "setup", "deliberate fixture error mid-ramp"),
        ("test_timeout_signal", "call", "Timeout"),
    ],
    ids=["failing-test", "fixture-exception", "timeout-signal"],
)
def test_failure_mid_ramp_releases_the_table_after_the_test(child, test, when, text, request):
    c = child(test)
    c.wait_run_start()
    c.wait_mid_ramp()
    c.go()
    seen = time.perf_counter()
    # the child ends the test by itself; the release follows in the bench fixture's teardown
    obs = c.watch_release(seen, 30.0)
    assert obs.released_after_s is not None, f"force still {obs.samples[-1][1]:.1f} N 30 s after the ramp"
    assert obs.peak_n > MID_RAMP_N
    c.wait_holding()
    st = c.wait_status(lambda s: not s.enabled, RELEASE_TABLE_S / K + MARGIN_WALL_S, "drive off")
    assert st.force_n < RESIDUAL_N
    assert st.estop_latched and st.fault_code is FaultCode.ESTOP and not st.watchdog_tripped
    rc = c.let_go()
    assert rc == pytest.ExitCode.TESTS_FAILED, c.output()
    record = c.record()
    ends = [e for e in record.of(Event.TEST_END) if e["outcome"] == "failed"]
    assert len(ends) == 1 and ends[0]["when"] == when and text in (ends[0]["longrepr"] or ""), ends
    safe = record.of(Event.SAFE_STATE)
    assert [e["reason"] for e in safe] == ["after test", "session end"], safe
    assert all(e["problems"] == [] for e in safe)
    # the failure, then the release after the test, then the end of the session
    order = [record.events.index(e) for e in (ends[0], safe[0], safe[1], record.events[-1])]
    assert order == sorted(order)
    assert record.events[-1]["event"] == Event.RUN_END and record.events[-1]["exitstatus"] == 1
    report(request, "peak force (N)", obs.peak_n)


def test_every_link_dead_the_watchdog_releases_and_the_run_says_table_not_confirmed_safe(child, request):
    """Seen in the field as "heartbeat alive, every command failing": now the failed release
    stops the beats at once, the controller's watchdog releases the table, the run cannot
    confirm it and says so in one line (stderr and record), runs no further test, and exits 4."""
    c = child("test_links_die or test_never_runs_after_an_unconfirmed_release")
    c.wait_run_start()
    c.wait_mid_ramp()
    c.go()
    seen = time.perf_counter()
    lease_s = lease_length_s(WATCHDOG_TABLE_S / K)
    # the child's release attempts (0.2 s timeouts) then the watchdog: generous, not a timing claim
    obs = c.watch_release(seen, (WATCHDOG_TABLE_S + RELEASE_TABLE_S) / K + lease_s + 10.0)
    assert obs.released_after_s is not None, f"force still {obs.samples[-1][1]:.1f} N"
    st = c.status()
    assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG, st
    c.wait_holding()
    rc = c.let_go()
    assert rc == 4, c.output()
    out = c.output()
    assert "TABLE NOT CONFIRMED SAFE — emulated-lumbar" in out
    record = c.record()
    unsafe = record.of(Event.TABLE_NOT_SAFE)
    assert unsafe and unsafe[0]["reason"] == "after test" and unsafe[0]["beats_stopped"], unsafe
    assert "heartbeat stopped (watchdog)" in unsafe[0]["steps"]
    started = [e["test"] for e in record.of(Event.TEST_START)]
    assert not any("never_runs" in t for t in started), started
    assert record.events[-1]["event"] == Event.RUN_END and record.events[-1]["exitstatus"] == 4
    report(request, "below residual after the links died (wall s)", obs.released_after_s)
