"""The safety proof of the plugin's exit paths, against the emulated table in a subprocess.

A child `python -m pytest` opens the shipped emulated lumbar rig (the plugin starts its own
emulator), starts a slow ramp and then ends in one of the ways a session can end: SIGINT
(Ctrl-C), SIGTERM, SIGKILL, a failing test, an exception in a fixture, a pytest-timeout
(signal method, and the thread method that ends the interpreter with os._exit). This
process reads the emulator's endpoints from the child's run record, watches the force
through its own Modbus link and shows that the table is released — below the residual
force within the time the specification allows — on every path.

Two arrangements keep the observation possible and the child honest:
* the child's conftest holds the end of the session (a session fixture torn down just
  before the plugin's) until this process has looked: the emulator dies with the session,
  a real table would not. It runs after every release under test was commanded, so it
  cannot help the release.
* after SIGKILL / os._exit the emulator (a grandchild) is orphaned and keeps serving: the
  controller's watchdog releases the table; afterwards it is stopped here by its pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.controller import TractionController
from drivers.lease import lease_length_s
from drivers.tcm1 import FaultCode, Phase
from reports.record import RECORD_NAME, read_record
from rigs.config import load_rig
from verification.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
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

CHILD_CONFTEST = '''
import os
import time

import pytest

HOLD = os.environ["EXIT_PATH_HOLD"]


@pytest.fixture(scope="session", autouse=True)
def hold_session_end(session_rig):
    """Keep the rig, and so the emulator it started, open until the observer has looked.
    Set up after session_rig, so torn down before it (after every test's own teardown)."""
    yield
    open(HOLD + ".waiting", "w").close()
    deadline = time.monotonic() + 30.0
    while not os.path.exists(HOLD) and time.monotonic() < deadline:
        time.sleep(0.01)
'''

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


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its (new) parent."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _is_emulator(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"rigcli" in cmdline and b"emulate" in cmdline


@dataclass
class Observation:
    peak_n: float = 0.0
    released_after_s: float | None = None  # wall seconds from the reference instant
    samples: list = field(default_factory=list)


class Child:
    """One child pytest session on the emulated rig, observed from this process."""

    def __init__(self, tmp: Path, test: str) -> None:
        self.tmp = tmp
        self.runs = tmp / "runs"
        self.hold = tmp / "hold"
        (tmp / "conftest.py").write_text(CHILD_CONFTEST, encoding="utf-8")
        (tmp / "test_child.py").write_text(CHILD_TESTS, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
        env["EXIT_PATH_HOLD"] = str(self.hold)
        env["EXIT_PATH_GO"] = str(tmp / "go")
        self.log = open(tmp / "child.log", "w+", encoding="utf-8")
        self.proc = subprocess.Popen(
            # option values joined with "=": a separate path argument would take part in
            # pytest's rootdir search and make this repository the child's rootdir
            [sys.executable, "-m", "pytest", *([f"test_child.py::{test}"] if " " not in test else ["test_child.py", "-k", test]),
             f"--rig={RIG_FILE}",
             f"--run-dir={self.runs}", "-p", "no:cacheprovider", "-q", "-rA"],
            cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,  # signals reach the child only, never this session
        )
        self.endpoints: dict | None = None
        self.ctrl: TractionController | None = None

    # ------------------------------------------------------------ child side
    def output(self) -> str:
        self.log.flush()
        return (self.tmp / "child.log").read_text(encoding="utf-8")

    def record(self) -> list[dict]:
        paths = list(self.runs.glob(f"*/{RECORD_NAME}"))
        assert len(paths) <= 1, paths
        return read_record(paths[0].parent) if paths else []

    def wait_run_start(self) -> dict:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            start = [e for e in self.record() if e["event"] == "run-start"]
            if start:
                self.endpoints = start[0]["emulator"]
                assert self.endpoints and _is_emulator(self.endpoints["pid"])
                ep = self.endpoints["controller"]
                self.ctrl = TractionController(host=ep["host"], port=ep["port"], timeout_s=2.0,
                                               name="observer").connect()
                return start[0]
            assert self.proc.poll() is None, f"child ended before opening the rig:\n{self.output()}"
            time.sleep(0.02)
        raise AssertionError(f"no run-start in the child's record within {START_TIMEOUT_S} s:\n{self.output()}")

    def wait_holding(self, timeout_s: float = 30.0) -> None:
        """Until the child sits in its held end of session."""
        deadline = time.monotonic() + timeout_s
        waiting = Path(str(self.hold) + ".waiting")
        while not waiting.exists():
            assert self.proc.poll() is None, f"child ended without reaching the end of its session:\n{self.output()}"
            assert time.monotonic() < deadline, f"child not at the end of its session within {timeout_s} s:\n{self.output()}"
            time.sleep(0.01)

    def go(self) -> None:
        """Tell a child waiting mid-ramp (`mid_ramp`) that it has been seen: it may fail now."""
        (self.tmp / "go").touch()

    def let_go(self, timeout_s: float = 30.0) -> int:
        self.hold.touch()
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"child did not exit within {timeout_s} s:\n{self.output()}") from None

    # ------------------------------------------------------------ table side
    def wait_mid_ramp(self, timeout_s: float = 20.0):
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.ctrl.status()
            if st.force_n > MID_RAMP_N and st.phase is Phase.RAMP_UP:
                return st
            assert self.proc.poll() is None, f"child ended before the ramp:\n{self.output()}"
            assert time.monotonic() < deadline, f"no ramp above {MID_RAMP_N} N: {st}\n{self.output()}"
            time.sleep(0.002)

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
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.ctrl.status()
            if predicate(st):
                return st
            assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.1f} s: {st}"
            time.sleep(0.005)

    # ------------------------------------------------------------ cleanup
    def stop_orphaned_emulator(self) -> None:
        """After SIGKILL/os._exit the emulator outlives its parent: stop it by its pid."""
        pid = (self.endpoints or {}).get("pid")
        if not pid or not _alive(pid) or not _is_emulator(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid) and _is_emulator(pid):
            os.kill(pid, signal.SIGKILL)

    def _emulator_children(self) -> list[int]:
        try:
            pids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(p) for p in pids if _is_emulator(int(p))]

    def close(self) -> None:
        if self.ctrl is not None:
            self.ctrl.close()
        self.hold.touch()
        (self.tmp / "go").touch()
        if self.proc.poll() is None:
            try:
                self.proc.wait(10.0)
            except subprocess.TimeoutExpired:
                if self.endpoints is None:  # killed before it said where its emulator is
                    self.endpoints = {"pid": next(iter(self._emulator_children()), None)}
                self.proc.kill()
                self.proc.wait(10.0)
        self.stop_orphaned_emulator()
        self.log.close()


@pytest.fixture
def child(tmp_path):
    children: list[Child] = []

    def start(test: str) -> Child:
        c = Child(tmp_path, test)
        children.append(c)
        return c

    yield start
    for c in children:
        c.close()


def events(record: list[dict], kind: str) -> list[dict]:
    return [e for e in record if e["event"] == kind]


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
    os.kill(c.proc.pid, sig)
    limit = RELEASE_TABLE_S / K + MARGIN_WALL_S
    obs = c.watch_release(sent, limit)
    assert obs.released_after_s is not None, (
        f"force still {obs.samples[-1][1]:.1f} N {limit:.2f} s after {sig.name} (residual {RESIDUAL_N} N)"
    )
    # the release was the plugin's emergency stop, not the watchdog: its first trigger is kept
    c.wait_holding()
    assert not events(c.record(), "run-end"), (
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
    safe = events(record, "safe-state")
    assert safe[0]["reason"] == f"signal {sig.name}" and safe[0]["problems"] == []
    assert [e["reason"] for e in safe[1:]] == ["after test", "session end"]
    assert all(e["problems"] == [] for e in safe), safe  # every release reached the controller
    assert record[-1]["event"] == "run-end" and record[-1]["complete"] is False
    assert record[-1]["exitstatus"] == 2
    assert not _alive(c.endpoints["pid"])  # the session stopped its emulator
    report(request, "force at signal (N)", before.force_n)
    report(request, "peak after signal (N)", obs.peak_n)
    report(request, "below residual after (wall s)", obs.released_after_s)


def test_sigkill_mid_ramp_watchdog_releases_the_table(child, request):
    c = child("test_interrupted")
    beats = c.wait_run_start()["heartbeat"]["pid"]
    assert _alive(beats)
    before = c.wait_mid_ramp()
    sent = time.perf_counter()
    os.kill(c.proc.pid, signal.SIGKILL)
    assert c.proc.wait(10.0) == -signal.SIGKILL
    assert _alive(c.endpoints["pid"]), "the emulator died with its parent: nothing left to observe"
    # the heartbeat process ended with its parent: nothing feeds the watchdog any more
    deadline = time.monotonic() + 5.0
    while _alive(beats):
        assert time.monotonic() < deadline, "the heartbeat process outlived its SIGKILLed parent"
        time.sleep(0.01)
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
    assert events(record, "safe-state") == []  # the process had no chance: the device did it
    assert record[-1]["event"] != "run-end"
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
    os.kill(c.proc.pid, signal.SIGSTOP)
    try:
        lease_s = lease_length_s(WATCHDOG_TABLE_S / K)
        limit = (WATCHDOG_TABLE_S + RELEASE_TABLE_S) / K + lease_s + MARGIN_WALL_S
        obs = c.watch_release(sent, limit)
        assert obs.released_after_s is not None, (
            f"force still {obs.samples[-1][1]:.1f} N {limit:.2f} s after SIGSTOP (residual {RESIDUAL_N} N)")
        st = c.status()
        assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG, st
        assert _alive(beats)  # not a death: the lease stopped the beats
    finally:
        os.kill(c.proc.pid, signal.SIGCONT)
    # woken, the runner is ended the usual way; the table stays released throughout
    os.kill(c.proc.pid, signal.SIGTERM)
    c.wait_holding()
    assert c.status().force_n < RESIDUAL_N
    c.let_go()
    safe = events(c.record(), "safe-state")
    assert safe and safe[0]["reason"] == "signal SIGTERM" and all(e["confirmed"] for e in safe), safe
    report(request, "force at SIGSTOP (N)", before.force_n)
    report(request, "below residual after SIGSTOP (wall s)", obs.released_after_s)


def test_timeout_thread_method_os_exit_watchdog_releases_the_table(child, request):
    # pytest-timeout's thread method ends the interpreter with os._exit: no cleanup runs
    c = child("test_timeout_thread")
    c.wait_run_start()
    c.wait_mid_ramp()
    deadline = time.monotonic() + 20.0
    while c.proc.poll() is None:
        assert time.monotonic() < deadline, "the timeout did not end the child"
        time.sleep(0.002)
    exited = time.perf_counter()
    assert c.proc.returncode == 1
    assert "Timeout" in c.output()
    obs = c.watch_release(exited, (WATCHDOG_TABLE_S + RELEASE_TABLE_S) / K + MARGIN_WALL_S)
    assert obs.released_after_s is not None, f"force still {obs.samples[-1][1]:.1f} N"
    st = c.status()
    assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG
    assert events(c.record(), "safe-state") == []
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
    ends = [e for e in events(record, "test-end") if e["outcome"] == "failed"]
    assert len(ends) == 1 and ends[0]["when"] == when and text in (ends[0]["longrepr"] or ""), ends
    safe = events(record, "safe-state")
    assert [e["reason"] for e in safe] == ["after test", "session end"], safe
    assert all(e["problems"] == [] for e in safe)
    # the failure, then the release after the test, then the end of the session
    order = [record.index(e) for e in (ends[0], safe[0], safe[1], record[-1])]
    assert order == sorted(order)
    assert record[-1]["event"] == "run-end" and record[-1]["exitstatus"] == 1
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
    unsafe = events(record, "table-not-confirmed-safe")
    assert unsafe and unsafe[0]["reason"] == "after test" and unsafe[0]["beats_stopped"], unsafe
    assert "heartbeat stopped (watchdog)" in unsafe[0]["steps"]
    started = [e["test"] for e in events(record, "test-start")]
    assert not any("never_runs" in t for t in started), started
    assert record[-1]["event"] == "run-end" and record[-1]["exitstatus"] == 4
    report(request, "below residual after the links died (wall s)", obs.released_after_s)
