"""`rig faults links`: every link of a rig broken on purpose, at every moment of a trial.

Why: the framework's first promise is that whatever happens to the rig, the table ends
released. A promise tested only against the ways the authors thought of is a hope, so
here each link of an emulated rig (the controller's test link, its safety link, the
heartbeat process's link, the stimulus module, the gauge; and both command links at once)
runs through its own fault-injecting proxy (proxy.py), and each is severed, stalled, slowed, refused its
reconnect or fed garbage, at set-up, mid-ramp, in a hold above 300 N, just after a
trigger and during the release; the runner itself is also stopped (SIGSTOP) and killed
(SIGKILL) in a hold. The judge is the emulator, not the rig: an unproxied reader polls
the table's true cord force (the gauge dialect the rig does not use, which measures the
emulator's true force) and the controller's phase, and the gauge's own peak since the
fault gives the largest force between two polls.

Each cell: a fresh `rig emulate` (the rig file's time scale), five proxies, a rig file that
attaches to them, `rig run` on one emergency-release trial (hold, then a trigger at rest),
the fault at the moment, then from the ground truth: how long after the fault the force
stayed above the residual force, the largest force after it, the verdicts of the
requirements measured after the fault (never PASS), whether record.jsonl is intact (every
line parses, every line written before the fault still there), and the one line the user
saw. The bound, the watchdog period plus the specified release time in wall seconds plus
0.5 s, comes from the rig file and the specification (`Limits`), never a constant here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from drivers.controller import TractionController
from drivers.tcm1 import Phase
from reports.rundir import EVENT_KEY, Event, decode_line
from rigs.config import RigConfig, load_rig
from rigs.linkfaults.proxy import FaultProxy
from rigs.processes import end_process
from rigs.endpoints import Endpoints
from rigs.rig import PROJECT_ROOT, EmulatorProcess
from verification.spec import Specification

LINKS = ("test", "safety", "heartbeat", "stimulus", "gauge", "commands")
#: the proxies a link's fault applies to: "commands" is both controller command links at once
#: (test and safety), the case where only the heartbeat link and the stimulus module are left
PROXIES_OF = {"commands": ("test", "safety")}
LINK_FAULTS = ("sever", "stall", "delay", "refused", "garbage")
MOMENTS = ("setup", "ramp", "hold", "trigger", "release")
RUNNER = "runner"
RUNNER_FAULTS = ("sigstop", "sigkill")
LINK_TITLE = {"test": "controller test link", "safety": "controller safety link", "heartbeat": "heartbeat link",
              "commands": "both controller command links (test + safety)",
              "stimulus": "stimulus module", "gauge": "gauge", RUNNER: "the runner (rig run)"}
#: the trial every cell runs: one emergency release by the ESTOP coil at rest after a hold
SELECTION = "emergency and estop_coil"
TRIAL_FORCE_N = 400.0  # the hold above 300 N the reporter stopped the runner in
HOLD_MOMENT_N = 300.0
RAMP_MOMENT_N = 100.0
MARGIN_WALL_S = 0.5  # the goal's allowance on top of the watchdog period and the release time
#: wall seconds: a moment not reached by then is a cell that could not be run (reported, red)
MOMENT_TIMEOUT_S = 90.0
#: wall seconds the run may take after the fault before it is called hung (and killed)
RUN_AFTER_FAULT_S = 45.0
#: wall seconds a stopped runner stays stopped (then SIGCONT: the run must still not PASS)
STOPPED_FOR_EXTRA_S = 2.0
FAST_POLL_S = 0.002  # the moment watch: a trigger-to-residual release lasts ~15 ms wall at K = 10


@dataclass(frozen=True)
class Cell:
    link: str
    fault: str
    moment: str

    @property
    def id(self) -> str:
        return f"{self.link}/{self.fault}/{self.moment}"


def all_cells() -> list[Cell]:
    cells = [Cell(link, fault, moment) for link in LINKS for fault in LINK_FAULTS for moment in MOMENTS]
    return cells + [Cell(RUNNER, fault, moment) for fault in RUNNER_FAULTS for moment in MOMENTS]


def select(cells: list[Cell], only: str | None) -> list[Cell]:
    """`--only`: comma-separated LINK/FAULT/MOMENT patterns, `*` or a missing part for any."""
    if not only:
        return cells
    patterns = []
    for text in only.split(","):
        parts = (text.strip().split("/") + ["*", "*", "*"])[:3]
        for part, known in zip(parts, (LINKS + (RUNNER,), LINK_FAULTS + RUNNER_FAULTS, MOMENTS)):
            if part != "*" and part not in known:
                raise ValueError(f"--only {text.strip()}: {part!r} is not one of {', '.join(known)} (or *)")
        patterns.append(parts)
    return [c for c in cells if any(all(p in ("*", v) for p, v in zip(pat, (c.link, c.fault, c.moment)))
                                    for pat in patterns)]


@dataclass(frozen=True)
class Limits:
    """The goal of every cell, from the rig file and its specification."""

    time_scale: float
    residual_n: float
    watchdog_table_s: float
    release_table_s: float  # ER-RESIDUAL: below the residual force within this after a trigger
    margin_wall_s: float = MARGIN_WALL_S

    @classmethod
    def of(cls, rig: RigConfig, spec: Specification) -> "Limits":
        release = spec.requirement("ER-RESIDUAL").limits(residual=spec.residual_force_n, force=TRIAL_FORCE_N)[1]
        return cls(rig.time_scale, spec.residual_force_n, spec.plan.watchdog_s, float(release))

    @property
    def bound_wall_s(self) -> float:
        return (self.watchdog_table_s + self.release_table_s) / self.time_scale + self.margin_wall_s


def cell_spec(spec_file: Path, out: Path) -> Path:
    """The specification with one emergency trial: a hold at TRIAL_FORCE_N, then the trigger at rest."""
    data = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    data["plan"]["emergency"].update(trials=1, phases=["rest"], forces_n=[TRIAL_FORCE_N])
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------
# ground truth
# ---------------------------------------------------------------------------------------


class TruthGauge:
    """The emulator's gauge of the dialect the rig does not use, on a raw socket of its own:
    it measures the table's true cord force (0.05 N noise), whatever the rig's links do."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=2.0)
        self.lock = threading.Lock()
        self._buf = b""

    def ask(self, command: str) -> str:
        with self.lock:
            self.sock.sendall(command.encode() + b"\r")
            while b"\r\n" not in self._buf:
                data = self.sock.recv(4096)
                if not data:
                    raise ConnectionError("ground-truth gauge closed")
                self._buf += data
            line, self._buf = self._buf.split(b"\r\n", 1)
        return line.decode("ascii", "replace").strip()

    def force_n(self, command: str = "?C") -> float:
        text = self.ask(command)
        value, _, unit = text.partition(" ")
        if unit.strip() != "N":
            raise ValueError(f"ground-truth gauge answered {text!r}, expected newtons")
        return float(value)

    def close(self) -> None:
        self.sock.close()


class GroundTruth(threading.Thread):
    """Polls the true force (every `poll_s`) and keeps the samples, stamped perf_counter_ns."""

    def __init__(self, gauge: TruthGauge, poll_s: float) -> None:
        super().__init__(name="ground truth", daemon=True)
        self.gauge = gauge
        self.poll_s = poll_s
        self.samples: list[tuple[int, float]] = []
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append((time.perf_counter_ns(), self.gauge.force_n()))
            except (OSError, ValueError, ConnectionError):
                self.errors += 1
            self._halt.wait(self.poll_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(5.0)

    def latest(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0


def release_time_s(samples: list[tuple[int, float]], fault_ns: int, residual_n: float,
                   until_ns: int | None = None, crossings: list[int] = ()) -> tuple[float | None, float]:
    """(wall seconds from the fault until the true force went below the residual force for
    good — None if it never did within the samples —, the largest sampled force after it).
    `until_ns`: the end of the fault (a stopped runner continued): what the table does after
    that is the runner's again, not the fault's. `crossings`: the emulator's own instants of
    the true force falling through the residual (its events): the one between the last sample
    above and the first below replaces that sample, so the time is not the poll's."""
    after = [(t, f) for t, f in samples if t >= fault_ns and (until_ns is None or t <= until_ns)]
    if not after:
        return None, 0.0
    peak = max(f for _, f in after)
    last_above = None
    for t, f in after:
        if f > residual_n:
            last_above = t
    if last_above is None:
        return 0.0, peak
    below = next(((t, f) for t, f in after if t > last_above), None)
    if below is None:
        return None, peak  # still above at the last sample
    exact = next((t for t in crossings if last_above <= t <= below[0]), below[0])
    return (exact - fault_ns) / 1e9, peak


# ---------------------------------------------------------------------------------------
# the record
# ---------------------------------------------------------------------------------------


def _crossings(events_path: Path) -> list[int]:
    """perf_counter_ns of every "truth:residual" event (the true force through the residual)."""
    try:
        events = [json.loads(line) for line in events_path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []
    return [e["wall_ns"] for e in events if e.get("event") == "truth:residual"]


def _record_file(run_root: Path) -> Path | None:
    found = sorted(run_root.glob("*/record.jsonl"))
    return found[-1] if found else None


def snapshot_record(run_root: Path) -> bytes:
    """The complete lines of the record as they are now (at the fault)."""
    path = _record_file(run_root)
    if path is None:
        return b""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def check_record(run_root: Path, before: bytes, fault_utc: float) -> dict:
    """Every line parses; every line written before the fault is still there (append-only);
    which requirement rows were measured after `fault_utc` (those may not PASS)."""
    path = _record_file(run_root)
    if path is None:
        return {"intact": not before, "lines": 0, "bad_lines": [], "lost_before_fault": 0 if not before else -1,
                "measured_after_fault": [], "measurements_before_fault": 0}
    data = path.read_bytes()
    bad, after = [], set()
    lines = data.splitlines()
    for number, raw in enumerate(lines, 1):
        line, _problem = decode_line(raw)
        if line is None:
            bad.append(number)
            continue
        if line[EVENT_KEY] == Event.MEASUREMENT and _utc_s(line.get("utc")) >= fault_utc:
            rid = line.get("requirement", "")
            after.add(rid + (f".{line['quantity']}" if line.get("quantity") else ""))
    kept = data.startswith(before)
    lost = 0 if kept else len(before.splitlines()) - sum(1 for a, b in zip(before.splitlines(), lines) if a == b)
    measurements_before = sum(1 for raw in before.splitlines() if (decode_line(raw)[0] or {}).get(EVENT_KEY) == Event.MEASUREMENT)
    return {"intact": kept and not bad, "lines": len(lines), "bad_lines": bad, "lost_before_fault": lost,
            "measured_after_fault": sorted(after), "measurements_before_fault": measurements_before}


def _utc_s(text) -> float:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return float("inf")


def false_passes(affected: dict[str, str], events_path: Path, record_path: Path | None, exposed_ns: int,
                 exposed_utc: float) -> list[str]:
    """The PASS rows, measured after the fault reached the rig, that the ground truth
    contradicts: the release they timed was not the trial's trigger's (the first emergency
    release after the fault had another cause, e.g. the watchdog), or a measured release
    time is off the emulator's own crossing by more than its uncertainty (≥ 20 ms table)."""
    passed = [rid for rid, v in affected.items() if v == "PASS"]
    if not passed:
        return []
    events = []
    try:
        events = [json.loads(line) for line in events_path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return [f"{rid} (no ground truth to check it)" for rid in passed]
    # the trial's release: the first emergency release after the trial's START (the last
    # START before the fault reached the rig, or the first after it when that was at set-up)
    starts = [e for e in events if e["event"] == "start"]
    start = next((e for e in reversed(starts) if e["wall_ns"] <= exposed_ns), None) or next(
        (e for e in starts if e["wall_ns"] > exposed_ns), None)
    after = [e for e in events if start is not None and e["wall_ns"] >= start["wall_ns"]]
    first = next((e for e in after if e["event"].startswith("emergency:")), None)
    if first is None or first["event"] != "emergency:estop-coil":
        cause = first["event"].split(":", 1)[1] if first else "no emergency release at all"
        return [f"{rid} (the release after the fault was the {cause}'s, not the trial's trigger)" for rid in passed]
    crossing = {}
    for e in after:
        if e["wall_ns"] >= first["wall_ns"] and e["event"] in ("truth:half", "truth:residual"):
            crossing.setdefault(e["event"], e["t_table"] - first["t_table"])
    truth = {"ER-HALF": crossing.get("truth:half"), "ER-RESIDUAL": crossing.get("truth:residual")}
    wrong = []
    for raw in (record_path.read_text().splitlines() if record_path else []):
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        rid = line.get("requirement")
        if (line.get(EVENT_KEY) != Event.MEASUREMENT or rid not in passed or rid not in truth
                or _utc_s(line.get("utc")) < exposed_utc or line.get("quantity") or " trial " not in line.get("name", "")):
            continue
        expected, value = truth[rid], line.get("value")
        allowed = max(float(line.get("uncertainty") or 0.0), 0.02)
        if expected is None or value is None or abs(float(value) - expected) > allowed:
            wrong.append(f"{rid} (measured {value} s, the table's own {expected} s)")
    return wrong


def verdicts_of(run_root: Path) -> dict[str, str]:
    from reports.verdicts import summarise, verdict_rows

    path = _record_file(run_root)
    if path is None:
        return {}
    try:
        summary = summarise(path.parent)
    except Exception:  # noqa: BLE001 — a record too damaged to summarise has no verdicts (reported)
        return {}
    return {row.id: row.tally.verdict for row in verdict_rows(summary.results)}


# ---------------------------------------------------------------------------------------
# one cell
# ---------------------------------------------------------------------------------------


@dataclass
class CellResult:
    cell: str
    link: str
    fault: str
    moment: str
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    moment_force_n: float | None = None  # true force when the fault was applied
    exposed_after_s: float | None = None  # fault -> first use of the faulted link (None: never used)
    release_s: float | None = None  # fault -> below the residual force for good (None: never)
    release_from_exposure_s: float | None = None
    bound_s: float = 0.0
    max_force_n: float | None = None  # largest true force after the fault (gauge peak)
    affected: dict = field(default_factory=dict)  # requirement row -> verdict, measured after the fault
    false_pass: list[str] = field(default_factory=list)
    record: dict = field(default_factory=dict)
    exit_code: int | None = None
    user_line: str = ""
    wall_s: float = 0.0


class CellRunner:
    def __init__(self, rig_file: Path, limits: Limits, spec_file: Path, workdir: Path, *, poll_s: float = 0.02,
                 delay_ms: float | None = None, seed: int = 1) -> None:
        self.rig_file = rig_file
        self.rig = load_rig(rig_file)
        self.limits = limits
        self.spec_file = spec_file
        self.workdir = workdir
        self.poll_s = poll_s
        self.delay_ms = delay_ms
        self.seed = seed

    # -------------------------------------------------------------- set-up
    def _rig_file(self, ep: Endpoints, proxies: dict[str, FaultProxy], out: Path) -> Path:
        data = yaml.safe_load(self.rig_file.read_text(encoding="utf-8"))
        data["emulated"] = {"seed": self.seed, "attach": True,
                            "patient_simulator": f"127.0.0.1:{ep.patient_simulator.port}"}
        at = lambda name: f"127.0.0.1:{proxies[name].port}"  # noqa: E731
        data["controller"].update(transport="tcp", host="127.0.0.1", port=proxies["test"].port,
                                  safety_link=at("safety"), heartbeat_link=at("heartbeat"))
        data["stimulus"].update(host="127.0.0.1", port=proxies["stimulus"].port)
        data["gauge"]["resource"] = f"TCPIP::127.0.0.1::{proxies['gauge'].port}::SOCKET"
        out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return out

    def _delay_ms(self, link: str) -> float:
        """A link slower than its client's timeout each way: every exchange times out late."""
        if self.delay_ms is not None:
            return self.delay_ms
        timeout = self.rig.gauge.timeout_s if link == "gauge" else (
            self.rig.stimulus.timeout_s if link == "stimulus" else self.rig.controller.timeout_s)
        return timeout * 1000.0

    def _inject(self, cell: Cell, proxies: list[FaultProxy], runner: subprocess.Popen) -> int:
        if cell.link == RUNNER:
            at = time.perf_counter_ns()
            os.kill(runner.pid, signal.SIGSTOP if cell.fault == "sigstop" else signal.SIGKILL)
            return at
        return min(self._fault(cell, proxy) for proxy in proxies)

    def _fault(self, cell: Cell, proxy: FaultProxy) -> int:
        if cell.fault == "sever":
            return proxy.sever()
        if cell.fault == "stall":
            return proxy.stall()
        if cell.fault == "delay":
            return proxy.delay(self._delay_ms(cell.link))
        if cell.fault == "refused":
            at = proxy.sever()
            proxy.refuse(reset=True)  # the reconnect that follows is refused (and seen)
            return at
        at = proxy.garbage(16)  # bytes nobody asked for, then every frame from the device corrupted
        proxy.garbage(corrupt=True, frames=1 << 30)
        return at

    # -------------------------------------------------------------- moments
    def _wait_moment(self, cell: Cell, ctrl: TractionController, proxies: dict[str, FaultProxy],
                     runner: subprocess.Popen) -> str | None:
        """Block until the moment; None when reached, else why not."""
        deadline = time.perf_counter_ns() + int(MOMENT_TIMEOUT_S * 1e9)
        before_trigger = 0.0  # the force at the last look before the emergency release
        seen_emergency = False
        while time.perf_counter_ns() < deadline:
            if runner.poll() is not None:
                return f"the run ended (exit {runner.returncode}) before the moment {cell.moment}"
            if cell.moment == "setup":
                if proxies["heartbeat"].state()["connections_total"] > 0:  # the rig is open and armed
                    return None
                time.sleep(self.poll_s)
                continue
            try:
                st = ctrl.status()
            except Exception:  # noqa: BLE001 — the direct reader is the judge's, retried
                time.sleep(FAST_POLL_S)
                continue
            if cell.moment == "ramp" and st.phase is Phase.RAMP_UP and st.force_n >= RAMP_MOMENT_N:
                return None
            if cell.moment == "hold" and st.phase is Phase.HOLD and st.force_n >= HOLD_MOMENT_N:
                return None
            # the release itself may be shorter than a look (~15 ms wall at K = 10); the latch
            # it leaves stays until the next RESET, so a look that missed the phase sees it
            if st.phase is Phase.EMERGENCY_RELEASE or st.estop_latched or st.watchdog_tripped:
                seen_emergency = True
                if cell.moment == "trigger":
                    return None
                if cell.moment == "release" and st.force_n <= 0.5 * before_trigger:
                    return None
            elif cell.moment == "release" and seen_emergency:
                return None  # the release was faster than a poll: as late in it as could be
            else:
                before_trigger = st.force_n
            time.sleep(FAST_POLL_S if cell.moment in ("hold", "trigger", "release") else self.poll_s)
        return f"moment {cell.moment} not reached within {MOMENT_TIMEOUT_S:g} s"

    # -------------------------------------------------------------- the cell
    def run(self, cell: Cell) -> CellResult:
        started = time.perf_counter_ns()
        res = CellResult(cell.id, cell.link, cell.fault, cell.moment, bound_s=self.limits.bound_wall_s)
        work = Path(tempfile.mkdtemp(prefix=cell.id.replace("/", "-") + "-", dir=self.workdir))
        emulator = truth = gauge = ctrl = None
        proxies: dict[str, FaultProxy] = {}
        runner: subprocess.Popen | None = None
        try:
            emulator = EmulatorProcess.start(self.rig.table.kind, self.seed, self.rig.time_scale,
                                             events_path=str(work / "events.jsonl"))
            ep = emulator.endpoints
            c = ep.controller
            targets = {"test": c.port, "safety": c.port, "heartbeat": c.port,
                       "stimulus": ep.stimulus.port, "gauge": ep.gauge(self.rig.gauge.dialect).port}
            for name, port in targets.items():
                proxies[name] = FaultProxy(c.host, port, name=name, seed=zlib.crc32(cell.id.encode())).start()
            rig_file = self._rig_file(ep, proxies, work / "rig.yaml")
            other = "gcl" if self.rig.gauge.dialect == "scpi" else "scpi"
            if other != "gcl":
                raise RuntimeError("the ground truth reads the gcl gauge: run the matrix on a rig with the scpi gauge")
            gauge = TruthGauge(c.host, ep.gauge(other).port)
            truth = GroundTruth(gauge, self.poll_s)
            truth.start()
            ctrl = TractionController.on(c.link(), name="ground-truth reader", pipeline_status=False).connect()
            run_root = work / "runs"
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                            os.environ.get("PYTHONPATH")])))
            out, err = open(work / "stdout.txt", "w"), open(work / "stderr.txt", "w")
            runner = subprocess.Popen([sys.executable, "-m", "rigcli", "run", "--rig", str(rig_file),
                                       "--spec", str(self.spec_file), "--no-report", "--no-history",
                                       "--run-dir", str(run_root), "-k", SELECTION],
                                      stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=str(PROJECT_ROOT), env=env)
            out.close()
            err.close()
            why = self._wait_moment(cell, ctrl, proxies, runner)
            if why:
                res.problems.append(why)
                return res
            faulted = [proxies[name] for name in PROXIES_OF.get(cell.link, (cell.link,)) if name in proxies]
            fault_utc = time.time()
            fault_ns = self._inject(cell, faulted, runner)
            res.moment_force_n = gauge.force_n()  # now, not the last poll's
            gauge.ask("CLR")  # the gauge's peak from here on: the largest force between two polls too
            before = snapshot_record(run_root)
            resumed_ns = self._observe(cell, runner, fault_ns, res, gauge)
            end_ns = time.perf_counter_ns()
            # more truth after the run ended (a killed runner ends at once; the controller's
            # watchdog then has the bound to act): the table must be, and stay, released
            until_ns = max(end_ns + int(max(0.3, 3 * self.poll_s) * 1e9),
                           fault_ns + int((self.limits.bound_wall_s + 1.0) * 1e9))
            time.sleep(max(0.0, (until_ns - time.perf_counter_ns()) / 1e9))
            truth.stop()
            peak_gauge = gauge.force_n("?PT")
            samples = sorted(truth.samples + [(fault_ns, res.moment_force_n)])
            res.release_s, peak_sampled = release_time_s(samples, fault_ns, self.limits.residual_n, resumed_ns,
                                                         _crossings(work / "events.jsonl"))
            # a resumed runner: the gauge's peak while it was stopped (read before SIGCONT)
            res.max_force_n = max(res.max_force_n if resumed_ns is not None else peak_gauge, peak_sampled)
            if cell.link == RUNNER:
                exposed_ns = fault_ns
            else:
                uses = [p.state()["first_use_ns"] for p in faulted]
                exposed_ns = min((u for u in uses if u is not None), default=None)
            if exposed_ns is not None:
                res.exposed_after_s = (exposed_ns - fault_ns) / 1e9
                if res.release_s is not None:
                    res.release_from_exposure_s = max(0.0, res.release_s - res.exposed_after_s)
            # measured after the fault reached the rig: those rows may not PASS
            exposed_utc = fault_utc + (res.exposed_after_s or 0.0)
            res.record = check_record(run_root, before, exposed_utc)
            verdicts = verdicts_of(run_root)
            measured_after = set(res.record["measured_after_fault"])
            res.affected = {rid: v for rid, v in verdicts.items() if rid in measured_after}
            if exposed_ns is not None:
                res.false_pass = false_passes(res.affected, work / "events.jsonl", _record_file(run_root),
                                              exposed_ns, exposed_utc)
            res.exit_code = runner.returncode
            res.user_line = _user_line(work)
            self._judge(res, exposed_ns, end_ns)
        except Exception as exc:  # noqa: BLE001 — a cell that cannot run is reported, never hidden
            res.problems.append(f"cell could not run: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        finally:
            if runner is not None:
                end_process(runner)
            if truth is not None and truth.is_alive():
                truth.stop()
            for part in (ctrl, gauge):
                if part is not None:
                    try:
                        part.close()
                    except Exception:  # noqa: BLE001
                        pass
            for proxy in proxies.values():
                proxy.close()
            if emulator is not None:
                emulator.stop()
            res.wall_s = (time.perf_counter_ns() - started) / 1e9
        return res

    def _observe(self, cell: Cell, runner: subprocess.Popen, fault_ns: int, res: CellResult,
                 gauge: TruthGauge) -> int | None:
        """Let the fault play out: a stopped runner stays stopped for the bound plus a margin
        (then it continues: its instant is returned, and no verdict may be false after it);
        otherwise until the run ends."""
        resumed_ns = None
        if cell.fault == "sigstop":
            time.sleep(self.limits.bound_wall_s + STOPPED_FOR_EXTRA_S)
            res.max_force_n = gauge.force_n("?PT")
            resumed_ns = time.perf_counter_ns()
            os.kill(runner.pid, signal.SIGCONT)
        try:
            runner.wait(RUN_AFTER_FAULT_S)
        except subprocess.TimeoutExpired:
            res.problems.append(f"the run did not end within {RUN_AFTER_FAULT_S:g} s of the fault (killed)")
            runner.kill()
            runner.wait(10)
        return resumed_ns

    def _judge(self, res: CellResult, exposed_ns: int | None, end_ns: int) -> None:
        bound = self.limits.bound_wall_s
        if exposed_ns is None:
            pass  # the rig never touched the faulted link again: no release is owed to it
        elif res.release_from_exposure_s is None:
            res.problems.append(f"force above the residual {self.limits.residual_n:g} N until the end "
                                f"(max {res.max_force_n:.0f} N)")
        elif res.release_from_exposure_s > bound:
            res.problems.append(f"released {res.release_from_exposure_s:.2f} s after the fault reached the rig "
                                f"(bound {bound:.2f} s)")
        if res.false_pass:
            res.problems.append(f"false PASS: {'; '.join(res.false_pass)}")
        rec = res.record
        if rec.get("bad_lines"):
            res.problems.append(f"record: {len(rec['bad_lines'])} line(s) do not parse (first: line {rec['bad_lines'][0]})")
        if rec.get("lost_before_fault"):
            res.problems.append(f"record: {rec['lost_before_fault']} line(s) written before the fault lost")
        res.ok = not res.problems


def _user_line(work: Path) -> str:
    """The one line the user saw: a TABLE NOT CONFIRMED SAFE line if there was one, else the
    last line on stderr, else the overall verdict with the first reason a test broke off."""
    def lines(name: str) -> list[str]:
        try:
            text = (work / name).read_text(errors="replace")
        except OSError:
            return []
        return [ln.strip() for ln in text.splitlines()
                if ln.strip() and not ln.lstrip().startswith(("warnings.warn", "/", "-- Docs", "self._mark"))]

    err, out = lines("stderr.txt"), lines("stdout.txt")
    loud = next((ln for ln in err + out if "NOT CONFIRMED SAFE" in ln), None)
    if loud:
        return loud[:240]
    if err:
        return err[-1][:240]
    overall = next((ln for ln in reversed(out) if ln.startswith("overall:")), "")
    overall = overall.split(" — run record")[0]
    reason = next((ln.split(" — ", 1)[-1] for ln in out if ln.startswith("test did not complete:")), "")
    return (f"{overall} ({reason})" if reason else overall)[:240]


# ---------------------------------------------------------------------------------------
# the matrix
# ---------------------------------------------------------------------------------------


class BusyLoad:
    """N busy-loop processes for the matrix's duration (`--load N`)."""

    def __init__(self, n: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
                      for _ in range(n)]

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(5)


def run_cells(cells: list[Cell], runner: CellRunner, jobs: int = 1, on_result=None) -> list[CellResult]:
    results: list[CellResult] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for res in pool.map(runner.run, cells):
            results.append(res)
            if on_result is not None:
                on_result(res)
    return results


def result_dict(res: CellResult) -> dict:
    return asdict(res)
