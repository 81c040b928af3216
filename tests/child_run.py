"""One way for a test to run `rig run` (or pytest on a suite) in a child process and to
watch, from outside, the table that child opened — as the person at the bench, or an
observer of its exit paths, would.

Why a child at all: `pytest.main` cannot run twice in one process (labgrid's plugin), and
an exit path (SIGKILL, os._exit) can only be watched from another process. Why one
harness: the exit-path, operator, over-force and panel tests each need the same things of
that child, and each had them a little differently —
* an environment without this session's pytest variables (the child would take this
  test's options, or think it is inside this test), and CI dropped where a person is needed;
* its input: none (stdin /dev/null and no controlling terminal: a script, the fault
  matrix) or a pseudo-terminal (pexpect) when the test types at its prompts;
* its own session and process group, so a signal meant for it never reaches this
  session, and so everything it started (the emulator, the heartbeat process) can be
  ended with it whatever state it was left in;
* a run directory under the test's tmp_path, read only through the run-record API
  (reports.rundir); the emulator's endpoints from the run-start line (ephemeral ports:
  nothing here names a port);
* every wait bounded, and a wait that runs out says what it waited for, whether the
  child is still running, and the child's last output lines;
* its session end held (tests/session_hold.py) until the test has looked at the table —
  the emulator dies with the session, a real table would not.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

from drivers.controller import TractionController
from reports.rundir import RECORD_NAME, Event, RecordRead, RunStart, run_dirs, run_start_of, scan_record
from tests import session_hold

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 60.0  # default bound of a wait on the child (a loaded 2-core machine starting an emulator)
END_S = 10.0  # wall s a child is given to end by itself before its process group is killed
TAIL_LINES = 40  # of the child's output, in a failure message
#: this session's own pytest variables: a child inheriting them would take this test's
#: options (PYTEST_ADDOPTS) or believe it runs inside this test (PYTEST_CURRENT_TEST)
PYTEST_ENV = ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")

T = TypeVar("T")


def rig_run_argv(*args: str, pytest_args: tuple[str, ...] = ()) -> list[str]:
    """The argv of `rig run ARGS [-- PYTEST_ARGS]` with this interpreter."""
    return [sys.executable, "-m", "rigcli", "run", *args, *(("--", *pytest_args) if pytest_args else ())]


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its (new) parent."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def is_emulator(pid: int) -> bool:
    """`rig emulate`: so a pid read from a record is never taken for an unrelated process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"rigcli" in cmdline and b"emulate" in cmdline


def _procs() -> list[tuple[int, int, int, int]]:
    """(pid, parent pid, process group, start time in clock ticks) of every live process."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            out.append((int(entry), int(fields[1]), int(fields[2]), int(fields[19])))
    return out


def _belonging_to(pid: int) -> set[tuple[int, int]]:
    """(pid, start time) of every live process of `pid`'s process group, and of every
    descendant of `pid` — those that started a session of their own (the panel) too."""
    procs = _procs()
    children: dict[int, list[int]] = {}
    for p, parent, _, _ in procs:
        children.setdefault(parent, []).append(p)
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return {(p, start) for p, _, group, start in procs
            if (p in found or group == pid) and p != os.getpid()}


def _still(known: set[tuple[int, int]]) -> list[int]:
    """Those of `known` still alive as the same process (a pid may have been reused)."""
    live = {(p, start) for p, _, _, start in _procs()}
    return sorted(p for p, start in known & live)


def end_pid(pid: int, wait_s: float = END_S) -> None:
    """SIGTERM, then SIGKILL after `wait_s`: a process the child left behind (the emulator
    after a SIGKILLed or os._exit'ed session) that must not outlive the test."""
    if not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


class ChildRun:
    """A child process started for a test: `argv` in `cwd`, its output in `tmp/child.log`,
    its run directories under `tmp/runs` (`argv` may be a function of that directory, to
    pass it as `--run-dir`).

    `terminal`: under a pseudo-terminal (pexpect) the test types at — its controlling
    terminal; with `stdin_devnull` too, the terminal stays the controlling one but input
    comes from nowhere. Otherwise stdin is /dev/null and there is no controlling terminal.
    `hold`: the child holds its session end (tests/session_hold.py, loaded with
    `HOLD_ARGS`) until `let_go()`.

    Every child is in a session (and process group) of its own; `close()` ends it and
    everything it started, whatever state it was left in (stopped, deadlocked, killed
    with its emulator orphaned)."""

    def __init__(self, tmp: Path, argv: list[str] | Callable[[Path], list[str]], *, cwd: Path = REPO,
                 env: dict | None = None, drop_env: tuple[str, ...] = (), terminal: bool = False, stdin_devnull: bool = False,
                 hold: bool = False, name: str = "rig run", wait_s: float = WAIT_S, end_s: float = END_S) -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.wait_s = wait_s
        self.end_s = end_s
        self.runs = self.tmp / "runs"
        self.hold_path = self.tmp / "hold"
        self.log_path = self.tmp / "child.log"
        self.links: list = []  # drivers connected to the child's table: closed with it
        #: (pid, start time) of what the child started, as last seen while it ran: ended
        #: with it even once it left the child's group and was reparented (the panel)
        self.offspring: set[tuple[int, int]] = set()
        self._noted = 0.0
        argv = argv(self.runs) if callable(argv) else list(argv)
        child_env = {k: v for k, v in os.environ.items() if k not in PYTEST_ENV + tuple(drop_env)}
        # this checkout's code, wherever the child runs: not what an install made earlier
        # maps (an editable install lists the packages that existed when it was made)
        child_env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
        child_env.update(env or {})
        if hold:
            child_env[session_hold.HOLD_ENV] = str(self.hold_path)
        self.log = open(self.log_path, "w", encoding="utf-8")
        self.pty = self.proc = None
        if terminal:
            import pexpect

            if stdin_devnull:  # as a script or the fault matrix starts it from a terminal
                argv = ["/bin/sh", "-c", 'exec "$@" < /dev/null', "sh", *argv]
            # pexpect's child is the leader of a new session, the pty its controlling terminal
            self.pty = pexpect.spawn(argv[0], argv[1:], cwd=str(cwd), env=child_env, encoding="utf-8",
                                     timeout=wait_s, dimensions=(60, 220))
            self.pty.logfile_read = self.log
            self.pid = self.pty.pid
        else:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=self.log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            self.pid = self.proc.pid

    # ------------------------------------------------------------ the child's state
    def poll(self) -> int | None:
        """Its exit status once it ended (minus the signal that ended it), else None."""
        if self.proc is not None:
            if self.proc.returncode is None:
                self._note_offspring()
            return self.proc.poll()
        if self.pty.isalive():
            self._note_offspring()
            return None
        return self.pty.exitstatus if self.pty.exitstatus is not None else -(self.pty.signalstatus or 0)

    def _note_offspring(self) -> None:
        if time.monotonic() - self._noted > 0.1:  # a scan of /proc, at most ten times a second
            self._noted = time.monotonic()
            self.offspring |= _belonging_to(self.pid)

    @property
    def running(self) -> bool:
        return self.poll() is None

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def _drain(self) -> None:
        """What a pseudo-terminal child wrote and nobody read yet, into the log."""
        if self.pty is not None:
            import pexpect

            try:
                self.pty.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=0.2)
            except Exception:  # noqa: BLE001 — only for the failure message
                pass

    def failure(self, why: str) -> AssertionError:
        """`why`, whether the child still runs, and its last output lines."""
        self._drain()
        code = self.poll()
        state = "still running" if code is None else f"ended with exit status {code}"
        return AssertionError(f"{why}\n--- {self.name} ({state}), its last {TAIL_LINES} output lines ---\n{self.tail()}")

    def wait_for(self, check: Callable[[], T], what: str | Callable[[], str], timeout_s: float | None = None, *,
                 poll_s: float = 0.02, while_running: bool = True) -> T:
        """`check()` until it returns something true (returned), for at most `timeout_s`
        wall s; `while_running`: the child ending first is a failure too. `what` (or what
        it returns when called, e.g. with the last reading) names the wait when it fails."""
        timeout_s = self.wait_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            value = check()
            if value:
                return value
            if while_running and not self.running:
                raise self.failure(f"{self.name} ended before {what if isinstance(what, str) else what()}")
            if time.monotonic() > deadline:
                raise self.failure(f"{what if isinstance(what, str) else what()}: not within {timeout_s:g} s")
            time.sleep(poll_s)

    def wait(self, timeout_s: float | None = None) -> int:
        """Until the child ends (bounded): its exit status."""
        timeout_s = self.wait_s if timeout_s is None else timeout_s
        if self.pty is not None:
            import pexpect

            try:
                self.pty.expect(pexpect.EOF, timeout=timeout_s)
            except pexpect.TIMEOUT:
                raise self.failure(f"{self.name} did not end within {timeout_s:g} s") from None
            self.pty.close()
            return self.poll()
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise self.failure(f"{self.name} did not end within {timeout_s:g} s") from None

    # ------------------------------------------------------------ its terminal
    def expect(self, pattern, timeout_s: float | None = None) -> None:
        """The pseudo-terminal shows `pattern` (a regex, or pexpect.EOF) within the bound."""
        import pexpect

        try:
            self.pty.expect(pattern, timeout=self.wait_s if timeout_s is None else timeout_s)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            raise self.failure(f"no {pattern!r} from {self.name} ({type(exc).__name__})") from None

    def answer(self, prompt: str, text: str) -> None:
        self.expect(prompt)
        self.pty.sendline(text)

    def sendline(self, text: str) -> None:
        self.pty.sendline(text)

    @property
    def before(self) -> str:
        """The terminal's output before the last match."""
        return self.pty.before

    def wait_output(self, pattern: str, timeout_s: float | None = None) -> re.Match:
        """The first line of its output matching `pattern` (a child without a terminal)."""
        regex = re.compile(pattern, re.M)
        return self.wait_for(lambda: regex.search(self.output()), f"a line matching {pattern!r} in its output",
                             timeout_s)

    # ------------------------------------------------------------ its run record
    def run_dir(self) -> Path | None:
        found = list(run_dirs(self.runs))
        if len(found) > 1:
            raise self.failure(f"more than one run directory: {found}")
        return found[0] if found else None

    def has_run_dir(self) -> bool:
        return bool(list(self.runs.glob(f"*/{RECORD_NAME}")))

    def wait_run_dir(self, timeout_s: float | None = None) -> Path:
        return self.wait_for(self.run_dir, "its run directory", timeout_s)

    def record(self) -> RecordRead:
        """The run record as it stands (empty before the run directory exists)."""
        d = self.run_dir()
        return scan_record(d) if d is not None else RecordRead([])

    def events(self, kind: Event) -> list[dict]:
        return self.record().of(kind)

    def run_start(self, timeout_s: float | None = None) -> RunStart:
        """The run-start line, once written."""
        return self.wait_for(lambda: run_start_of(self.record().events), "the run-start line in its record", timeout_s)

    def emulator(self, timeout_s: float | None = None) -> dict:
        """The endpoints of the emulator the child started (its ports are ephemeral)."""
        ep = self.run_start(timeout_s).emulator
        if not ep:
            raise self.failure("the run started no emulator: nothing to watch the table through")
        return ep

    def controller(self, name: str = "observer") -> TractionController:
        """A link of this process's own to the emulated controller (closed with the child)."""
        ep = self.emulator()["controller"]
        return self.keep(TractionController(host=ep["host"], port=ep["port"], timeout_s=2.0, name=name).connect())

    def stimulus(self):
        from drivers.stimulus import StimulusModule

        ep = self.emulator()["stimulus"]
        return self.keep(StimulusModule(ep["host"], ep["port"], ep["unit_id"]).connect())

    def patient_simulator(self):
        from drivers.patient_simulator import PatientSimulator

        ep = self.emulator()["patient_simulator"]
        return self.keep(PatientSimulator(ep["host"], ep["port"]).connect())

    def keep(self, link: T) -> T:
        self.links.append(link)
        return link

    # ------------------------------------------------------------ its held session end
    def wait_holding(self, timeout_s: float | None = None) -> None:
        """Until the child sits in its held session end (after every test's teardown)."""
        waiting = session_hold.waiting_path(self.hold_path)
        self.wait_for(waiting.exists, "the held end of its session", timeout_s, poll_s=0.01)

    def let_go(self) -> None:
        """Its session may end now."""
        self.hold_path.touch()

    # ------------------------------------------------------------ signals
    def send_signal(self, sig: int) -> None:
        """`sig` to the child process alone (as `kill PID`; a terminal's ^C would reach
        its whole process group, the emulator too)."""
        if self.running:
            self.offspring |= _belonging_to(self.pid)
        os.kill(self.pid, sig)

    def pause(self) -> None:
        self.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.send_signal(signal.SIGCONT)

    def end_group(self, sig: int = signal.SIGTERM, wait_s: float = 30.0) -> int | None:
        """`sig` to its whole process group (as a terminal's ^C or a service manager's stop
        reaches it) and up to `wait_s` for it to end: its exit status, None if it did not
        (`close()` ends it then)."""
        if self.running:
            self.offspring |= _belonging_to(self.pid)
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.poll()

    def kill(self) -> int:
        """SIGKILL to the child alone (what it started lives on); its exit status."""
        self.send_signal(signal.SIGKILL)
        return self.wait(END_S)

    # ------------------------------------------------------------ the end
    def close(self) -> None:
        """Always: its session let go, the test's links closed, the child given `end_s` to
        end by itself, then its process group and what it started SIGKILLed (SIGCONT
        first: a stopped process runs no death), and reaped."""
        self.let_go()
        for link in self.links:
            try:
                link.close()
            except Exception:  # noqa: BLE001 — closing must reach the child
                pass
        try:
            if self.running:
                deadline = time.monotonic() + self.end_s
                while self.running and time.monotonic() < deadline:
                    time.sleep(0.05)
            # it, its group and its descendants now (while it runs: once reaped, its pid and
            # so its group's id may be reused), and what it started earlier if that is still
            # the same process (an emulator orphaned by a SIGKILL, a panel in its own session)
            running = self.running
            known = self.offspring | _belonging_to(self.pid) if running else set(self.offspring)
            ours = [self.pid, *_still(known)] if running else _still(known)
            for sig in (signal.SIGCONT, signal.SIGKILL):
                for pid in ours:
                    try:
                        os.kill(pid, sig)
                    except (ProcessLookupError, PermissionError):
                        pass
            if self.proc is not None:
                self.proc.wait(END_S)
            else:
                self.pty.close(force=True)
            deadline = time.monotonic() + END_S  # a SIGKILL is delivered, not done, when os.kill returns
            while _still(known) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            self.log.close()


#: pytest arguments loading the held session end (tests/session_hold.py) into a child run
HOLD_ARGS = ("-p", "tests.session_hold")


class Children:
    """The `child_run` fixture's factory: every child started through it is closed at the
    test's end, however the test ended."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = Path(tmp)
        self.started: list[ChildRun] = []

    def __call__(self, argv: list[str] | Callable[[Path], list[str]], **kwargs) -> ChildRun:
        tmp = self.tmp if not self.started else self.tmp / f"child{len(self.started)}"
        self.started.append(ChildRun(kwargs.pop("tmp", tmp), argv, **kwargs))
        return self.started[-1]

    def close(self) -> None:
        errors = []
        for child in self.started:
            try:
                child.close()
            except Exception as exc:  # noqa: BLE001 — every child is ended, then the first error said
                errors.append(exc)
        if errors:
            raise errors[0]
