"""The run directory: what a run leaves on disk, stated once in code.

The rooms of the project talk to each other through this directory: the pytest plugin
and the operator console write it, the verdicts, the report, the history and the panel
read it, and a sealed run must still read the same years later. So its file names, the
kinds of line its record holds, the stamp every line carries, the reading of the lines
that identify and judge a run, the way numbers are shown, the atomic writer, the tail of
a file still being appended to and the page-answer protocol all live here, and every
writer and reader goes through them. Nothing here changes a byte of what is written:
a run recorded before this module existed reads into the same values.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from drivers.record_io import parse_stamp, utc_stamp, write_atomic  # noqa: F401 — the run directory's stamp and writer
from verification.measurement import U_DIGITS, limits_text, number_text
from verification.measurement import closeness as _closeness
from verification.spec import quantity_id

# ---------------------------------------------------------------- file names
#: the run record: one JSON object per line, each naming its kind in "event" (Event)
RECORD_NAME = "record.jsonl"
#: the live feed for the panel (fixtures/live_feed.py): "k" names a line's kind (Live)
LIVE_NAME = "live.jsonl"
#: the panel page's answers to operator questions (docs/panel-protocol.md)
ANSWERS_NAME = "answers.jsonl"
#: the heartbeat's live statistics, replaced atomically while the run lasts (drivers/heartbeat.py)
HEARTBEAT_NAME = "heartbeat.json"
#: how promptly the emulated table answered (rigs/emulator)
EMULATOR_STATS_NAME = "emulator-stats.json"
#: the run reviewed against its table's history (reports/history/review.py)
HISTORY_NAME = "history.json"
#: the copy of the rig file the run was started with ...
RIG_COPY_NAME = "rig.yaml"
#: ... or of the labgrid environment, when the rig came from one
LABGRID_ENV_COPY_NAME = "labgrid-env.yaml"
#: the copy of the specification the run verified
SPEC_COPY_NAME = "specification.yaml"
#: full tracebacks of the failures the report shortens to one line
TRACEBACKS_NAME = "tracebacks.log"
#: the time series behind measurements, one CSV each, named in their measurement line
SERIES_DIR = "series"
#: the seal (reports/manifest.py) and its signature (reports/signing.py)
MANIFEST_NAME = "MANIFEST.sha256"
SIGNATURE_NAME = MANIFEST_NAME + ".sig"
#: the rendered report (the one part of a sealed run that may be rendered again)
REPORT_DIR = "report"
#: allure-pytest's results, written during the run (rig run --allure)
ALLURE_RESULTS_DIR = "allure-results"


# ---------------------------------------------------------------- the stamp (drivers.record_io), where a run goes
def planned_run_dir(root: Path, rig_name: str, now: dt.datetime | None = None, pid: int | None = None) -> Path:
    """Where a run started now writes: ROOT/<UTC second>-<rig name>-<pid>, so runs sort by
    start and two rigs started in the same second never share a directory."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", rig_name)
    return Path(root) / f"{stamp}-{safe}-{os.getpid() if pid is None else pid}"


#: a series CSV's time base column (table seconds) ...
SERIES_TIME = "t_s"
#: ... and the value columns a reader knows, each with the unit its values are in (the unit
#: a measurement of it is stated in): the reference gauge's force, the inclinometer's angle,
#: the obstacle's load cell
SERIES_COLUMNS = {"force_n": "N", "angle_deg": "deg", "obstacle_force_n": "N"}


def series_name(n: int, name: str) -> str:
    """The path, relative to the run, of the n-th series a measurement named `name` wrote."""
    return f"{SERIES_DIR}/{n:04d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)[:80]}.csv"


# ---------------------------------------------------------------- the record's lines
class Event(StrEnum):
    """The kinds of line of record.jsonl, in the order a run writes them. A reader that
    meets a kind it does not know skips it; a writer can only write these."""

    RUN_START = "run-start"  # identity: rig, table, gauge and calibration, specification, operator
    SESSION_PLAN = "session-plan"  # the tests the session will run, in order
    TEST_START = "test-start"
    MEASUREMENT = "measurement"  # one judged value (MeasurementLine)
    TRIAL_REPEATED = "trial-repeated"  # an emergency trial run again (its trigger instant too uncertain)
    OPERATOR_NAME = "operator-name"  # the name asked at the first operator prompt
    OPERATOR_ASK = "operator-ask"  # a question open to the terminal and the page
    OPERATOR_STEP = "operator-step"  # the question closed: the answer, who, where, when
    OPERATOR_ANSWER_REFUSED = "operator-answer-refused"  # a page answer that could not count
    TEST_END = "test-end"
    SAFE_STATE = "safe-state"  # the table released (after each test, on every exit path)
    TABLE_NOT_SAFE = "table-not-confirmed-safe"  # no reading confirmed the release (rigs/safe_state.py)
    HEARTBEAT = "heartbeat"  # how well the watchdog was fed (at session end)
    EMULATOR = "emulator"  # the emulated table's reply statistics (at session end)
    RUN_END = "run-end"  # pytest's exit status; absent when the run was cut


#: the key every record line names its kind by
EVENT_KEY = "event"


class Live(StrEnum):
    """The kinds of line of live.jsonl (key "k")."""

    START = "start"
    STATUS = "status"
    GAUGE = "gauge"
    CONTEXT = "context"


#: the key every live-feed line names its kind by
LIVE_KEY = "k"
#: the angles a status line carries, under the controller status's own names, when the
#: controller reports them (a flexion-distraction table's encoders, degrees); a status
#: without them (traction) writes its line as it always has
LIVE_ANGLES = ("flexion_deg", "lateral_deg")


# ---------------------------------------------------------------- encoding a line
def _jsonable(value):
    import numpy as np

    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date, dt.datetime, Path)):
        return str(value)
    if isinstance(value, float) and value != value:
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value):
    """Standard JSON has no NaN/Infinity: a value never reached is recorded as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode_record_line(kind: Event, fields: Mapping[str, Any], utc: str | None = None) -> str:
    """One record line, without its newline: {"event", "utc", then the fields in the order
    given}, JSON with ", "/": " separators and non-ASCII kept (the format every record has)."""
    line = {EVENT_KEY: Event(kind).value, "utc": utc or utc_stamp(), **fields}
    return json.dumps(_finite(line), default=_jsonable, ensure_ascii=False, allow_nan=False)


def encode_live_line(line: Mapping[str, Any]) -> str:
    """One live-feed line, compact (the feed is the one file written many times a second)."""
    return json.dumps(line, separators=(",", ":"), allow_nan=False)


# ---------------------------------------------------------------- decoding a line
class Damage(NamedTuple):
    """A line of a record that does not decode (a disk error, an editor): skipped, never the
    end of the record, and said with its line number wherever the run is judged."""

    line: int  # 1-based line number in record.jsonl
    reason: str  # what is wrong with it, in a few words

    def __str__(self) -> str:
        return f"line {self.line} ({self.reason})"


def decode_line(raw: bytes, key: str | None = EVENT_KEY) -> tuple[dict | None, str | None]:
    """(the event, None) or (None, why it is not one): the one definition of a readable
    record line, shared by every reader (the report, the history, the panel). `key`: the
    field every line of the file names its kind by (None: any JSON object will do)."""
    if not raw.strip():
        return None, "blank line"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 at byte {exc.start + 1}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON, column {exc.colno}: {exc.msg}"
    if not isinstance(value, dict):
        return None, f"not a JSON object but {type(value).__name__}"
    if key is not None and not isinstance(value.get(key), str):
        return None, f"a JSON object without {key!r}"
    return value, None


def lines_of(events: Iterable[Mapping], kind: Event) -> list:
    """The record lines of one kind, in record order."""
    return [e for e in events if e.get(EVENT_KEY) == kind]


def damage_text(damage) -> str | None:
    """"record damaged at line 12 (not JSON, …)", the one wording every consumer prints."""
    damage = list(damage)
    if not damage:
        return None
    shown = ", ".join(str(d) for d in damage[:3]) + (f" and {len(damage) - 3} more lines" if len(damage) > 3 else "")
    return f"record damaged at {shown}" if len(damage) == 1 else f"record damaged at {len(damage)} lines: {shown}"


@dataclass(frozen=True)
class RecordRead:
    """What a record holds: every event that decodes, the lines that did not (damage), and
    whether the last line is torn. A torn last line is how a cut run ends (SIGKILL or power
    loss mid-write: a line without its newline), already reported as incomplete through the
    missing run-end; a bad line anywhere else, or a bad last line that did end, is damage."""

    events: list[dict]
    damage: tuple[Damage, ...] = ()
    torn_last_line: bool = False

    @property
    def damaged(self) -> bool:
        return bool(self.damage)

    def damage_text(self) -> str | None:
        return damage_text(self.damage)

    def of(self, kind: Event) -> list[dict]:
        """The lines of one kind, in record order."""
        return lines_of(self.events, kind)


def scan_record(directory: Path) -> RecordRead:
    """Every line of a run's record: each that decodes is an event, each that does not is
    damage with its line number and is skipped, so one bad line never hides the ones after
    it; a torn last line (no newline) is the cut of a killed run, not damage."""
    with open(Path(directory) / RECORD_NAME, "rb") as f:
        data = f.read()
    events, damage = [], []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the record ends with its newline, else the last line's torn text
    for number, raw in enumerate(lines, start=1):
        event, problem = decode_line(raw)
        if event is None:
            damage.append(Damage(number, problem))
        else:
            events.append(event)
    torn = False
    if tail:
        event, _problem = decode_line(tail)
        if event is None:
            torn = True
        else:  # cut exactly before its newline: the line itself is whole
            events.append(event)
    return RecordRead(events, tuple(damage), torn)


def read_record(directory: Path) -> list[dict]:
    """The events of a run's record (the damaged and torn lines skipped), for callers that
    only look up what was recorded; whatever judges a run reads scan_record, which says
    what was skipped."""
    return scan_record(directory).events


def run_dirs(root: Path) -> Iterator[Path]:
    """The run directories under a run root (its other files, e.g. history.sqlite, left out)."""
    root = Path(root)
    return iter(sorted(p for p in root.iterdir() if (p / RECORD_NAME).is_file())) if root.is_dir() else iter(())


def first_record_line(run_dir: Path) -> bytes:
    """The record's first line exactly as written (without its newline): the run-start line,
    whose digest is the run's identity wherever the directory lies (the history's run key)."""
    with open(Path(run_dir) / RECORD_NAME, "rb") as f:
        return f.readline().rstrip(b"\n")


# ---------------------------------------------------------------- the run-start line
def calibration_expired_at(gauge: Mapping, run_utc: str | None) -> bool:
    """Whether the reference gauge's calibration had expired when the run started: the
    plugin's own judgement as recorded (gauge.calibration_expired, decided by
    rigs.config.Calibration.expired on the run's day); a line without it is judged by the
    same rule from what it does hold: the run's UTC day after the calibration's due date."""
    recorded = gauge.get("calibration_expired")
    if isinstance(recorded, bool):
        return recorded
    due = (gauge.get("calibration") or {}).get("due")
    started = None
    try:
        started = parse_stamp(run_utc)
    except ValueError:
        pass
    if not due or started is None:
        return False
    try:
        return started.astimezone(dt.timezone.utc).date() > dt.date.fromisoformat(str(due))
    except ValueError:
        return False


def firmware_text(value) -> str | None:
    """A controller's firmware version as shown (0x0103); None when it was not read."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value:04X}"
    return None if value is None else str(value)


@dataclass(frozen=True)
class CalibrationAtRun:
    certificate: str | None = None
    date: str | None = None
    due: str | None = None
    expanded_uncertainty_n: float | None = None
    coverage_factor: float | None = None
    expired: bool = False  # calibration_expired_at: the one rule


@dataclass(frozen=True)
class GaugeAtRun:
    dialect: str | None = None
    resource: str | None = None
    model: str | None = None
    serial: str | None = None
    resolution_n: float | None = None  # from the rig file's gauge section
    calibration: CalibrationAtRun = field(default_factory=CalibrationAtRun)


@dataclass(frozen=True)
class InclinometerAtRun:
    """A flexion-distraction bench's reference inclinometer as the run used it: the rig
    file's `inclinometer:` section (and the run-start line's own `inclinometer`, where a
    writer records one), its calibration judged by the one expiry rule."""

    dialect: str | None = None
    resource: str | None = None
    model: str | None = None
    serial: str | None = None
    range_deg: float | None = None
    resolution_deg: float | None = None
    certificate: str | None = None
    date: str | None = None
    due: str | None = None
    expanded_uncertainty_deg: float | None = None
    coverage_factor: float | None = None
    expired: bool = False  # calibration_expired_at: the one rule

    @classmethod
    def of(cls, section: Mapping, recorded: Mapping, run_utc: str | None) -> "InclinometerAtRun":
        cal = recorded.get("calibration") or section.get("calibration") or {}
        both = {"calibration": cal, **({"calibration_expired": recorded["calibration_expired"]}
                                       if "calibration_expired" in recorded else {})}
        return cls(dialect=recorded.get("dialect") or section.get("dialect"),
                   resource=recorded.get("resource") or section.get("resource"),
                   model=recorded.get("model") or section.get("model"),
                   serial=recorded.get("serial") or section.get("serial"),
                   range_deg=section.get("range_deg"), resolution_deg=section.get("resolution_deg"),
                   certificate=cal.get("certificate"), date=cal.get("date"), due=cal.get("due"),
                   expanded_uncertainty_deg=cal.get("expanded_uncertainty_deg"),
                   coverage_factor=cal.get("coverage_factor"), expired=calibration_expired_at(both, run_utc))


def _served(recorded: Mapping | None, resource: str | None) -> Mapping:
    """What the run-start line records of an instrument, with the resource its emulator
    served it at when nothing else names one (an emulated rig file has no resources)."""
    out = dict(recorded or {})
    if not out.get("resource") and resource:
        out["resource"] = resource
    return out


def _gauge_at_run(section: Mapping, recorded: Mapping, run_utc: str | None) -> GaugeAtRun:
    """A force gauge as the run used it, from the rig file's section and what the line recorded."""
    cal = recorded.get("calibration") or section.get("calibration") or {}
    both = {"calibration": cal, **({"calibration_expired": recorded["calibration_expired"]}
                                   if "calibration_expired" in recorded else {})}
    return GaugeAtRun(dialect=recorded.get("dialect") or section.get("dialect"),
                      resource=recorded.get("resource") or section.get("resource"),
                      model=recorded.get("model") or section.get("model"),
                      serial=recorded.get("serial") or section.get("serial"),
                      resolution_n=section.get("resolution_n"),
                      calibration=CalibrationAtRun(
                          certificate=cal.get("certificate"), date=cal.get("date"), due=cal.get("due"),
                          expanded_uncertainty_n=cal.get("expanded_uncertainty_n"),
                          coverage_factor=cal.get("coverage_factor"),
                          expired=calibration_expired_at(both, run_utc)))


@dataclass(frozen=True)
class TableAtRun:
    kind: str | None = None  # as the controller identified itself (lumbar, cervical …)
    model: str | None = None  # the rig file's table model
    serial: str | None = None
    firmware: int | None = None
    protocol: int | None = None
    rated_force_n: float | None = None

    @property
    def firmware_text(self) -> str | None:
        return firmware_text(self.firmware)


@dataclass(frozen=True)
class SpecAtRun:
    name: str | None = None
    title: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class RunStart:
    """Who and what a run verified: the run-start line read once, for the panel, the report,
    the history and `rig run`. Every field is what the line holds (None where an older or
    shorter line lacks it); `line` keeps the whole line for what is read as it was written
    (the specification, the rig file, the emulator's endpoints)."""

    utc: str | None
    rig_name: str | None
    time_scale: float | None
    emulated: bool  # the rig file says so, or an emulator was started for the run
    table: TableAtRun
    gauge: GaugeAtRun
    spec: SpecAtRun
    operator: str | None
    worker: str | None  # the xdist worker that wrote it, under `rig run --workers`
    profile: str | None  # absent in records from before run profiles
    rig_file: str | None
    spec_file: str | None
    software: Mapping = field(default_factory=dict)  # traction_rig, python, git_commit, git_dirty
    line: Mapping = field(default_factory=dict, repr=False)
    #: a flexion-distraction bench's inclinometer and obstacle load cell (None: the rig has none)
    inclinometer: InclinometerAtRun | None = None
    obstacle_gauge: GaugeAtRun | None = None

    @classmethod
    def from_line(cls, line: Mapping) -> "RunStart":
        if line.get(EVENT_KEY) != Event.RUN_START:
            raise ValueError(f"not a {Event.RUN_START} line but {line.get(EVENT_KEY)!r}")
        rig = line.get("rig") or {}
        rig_table = rig.get("table") or {}
        rig_gauge = rig.get("gauge") or {}
        table = line.get("table") or {}
        gauge = line.get("gauge") or {}
        cal = gauge.get("calibration") or {}
        spec = line.get("specification") or {}
        served = line.get("emulator") or {}  # an emulated rig's instruments: where its emulator served them
        obstacle = (rig.get("obstacle") or {}).get("gauge") or {}
        return cls(
            utc=line.get("utc"),
            rig_name=rig.get("name"),
            time_scale=rig.get("time_scale"),
            emulated=bool(rig.get("emulated")) or line.get("emulator") is not None,
            table=TableAtRun(kind=table.get("kind"), model=rig_table.get("model"), serial=table.get("serial"),
                             firmware=table.get("firmware"), protocol=table.get("protocol"),
                             rated_force_n=table.get("rated_force_n")),
            gauge=GaugeAtRun(dialect=gauge.get("dialect"), resource=gauge.get("resource"),
                             model=gauge.get("model") or rig_gauge.get("model"),
                             serial=gauge.get("serial") or rig_gauge.get("serial"),
                             resolution_n=rig_gauge.get("resolution_n"),
                             calibration=CalibrationAtRun(
                                 certificate=cal.get("certificate"), date=cal.get("date"), due=cal.get("due"),
                                 expanded_uncertainty_n=cal.get("expanded_uncertainty_n"),
                                 coverage_factor=cal.get("coverage_factor"),
                                 expired=calibration_expired_at(gauge, line.get("utc")))),
            spec=SpecAtRun(name=spec.get("name"), title=spec.get("title"), version=spec.get("version")),
            operator=line.get("operator"),
            worker=line.get("worker"),
            profile=line.get("profile"),
            rig_file=line.get("rig_file"),
            spec_file=line.get("spec_file"),
            software=line.get("software") or {},
            line=line,
            inclinometer=InclinometerAtRun.of(rig.get("inclinometer") or {},
                                              _served(line.get("inclinometer"), (served.get("inclinometer") or {})
                                                      .get("resource")), line.get("utc"))
            if rig.get("inclinometer") or line.get("inclinometer") else None,
            obstacle_gauge=_gauge_at_run(obstacle, _served(line.get("obstacle_gauge"), (
                (served.get("obstacle_gauges") or {}).get(obstacle.get("dialect")) or {}).get("resource")),
                line.get("utc"))
            if obstacle or line.get("obstacle_gauge") else None,
        )

    @property
    def specification(self) -> dict:
        """The specification as the run verified it (requirements, limits, plan)."""
        return self.line.get("specification") or {}

    @property
    def rig(self) -> dict:
        """The rig file's content as the run read it."""
        return self.line.get("rig") or {}

    @property
    def emulation(self) -> dict | None:
        """The rig file's `emulated:` section (seed, faults …), or None for a bench."""
        return self.rig.get("emulated") or None

    @property
    def emulator(self) -> dict | None:
        """The emulator's endpoints and settings, when the run started one."""
        return self.line.get("emulator")


def run_start_of(events: Iterable[Mapping]) -> RunStart | None:
    """The run's identity from its events (the first run-start line), or None."""
    line = next((e for e in events if e.get(EVENT_KEY) == Event.RUN_START), None)
    return None if line is None else RunStart.from_line(line)


# ---------------------------------------------------------------- measurement lines
#: the verdict of a measurement whose check could not be judged (a precondition did not hold)
NOT_APPLICABLE = "N/A"
def value_text(m: Mapping | None) -> str:
    """A measurement line's value: "3.142 N", "holds"/"VIOLATED" for a boolean, "never" for
    a level never reached (recorded as null), "N/A" for a check not judged, "—" for none."""
    if m is None:
        return "—"
    if m.get("verdict") == NOT_APPLICABLE:
        return NOT_APPLICABLE
    if m.get("decision_rule") == "boolean":
        return "holds" if m.get("value") else "VIOLATED"
    value = m.get("value")
    return "never" if value is None else number_text(value, m.get("unit") or "")


def limit_text(m: Mapping | None, requirement: Mapping | None = None) -> str:
    """A measurement line's limits; with no line, the requirement's own (`requirement`: its
    entry in the recorded specification, whose limits may still be formulas)."""
    source = m if m is not None else requirement
    if source is None:
        return "—"
    if source.get("decision_rule") == "boolean":
        return "must hold"
    return limits_text(source.get("lower"), source.get("upper"), source.get("unit") or "")


def u_text(m: Mapping | None) -> str:
    """A measurement line's expanded uncertainty (k = 2): "± 0.062 N"; "—" for a boolean."""
    if m is None or m.get("decision_rule") == "boolean":
        return "—"
    return "± " + number_text(m.get("uncertainty") or 0.0, m.get("unit") or "", U_DIGITS)


def format_value(m: Mapping | None) -> tuple[str, str, str]:
    """(value, limit, U) of a deciding measurement: what the terminal table, the page and
    the report's matrix show."""
    return value_text(m), limit_text(m), u_text(m)


def closeness(m: Mapping) -> float:
    """How close a measurement line came to its limits (verification.measurement.closeness,
    the one rule: larger is worse, > 0 beyond)."""
    return _closeness(m.get("value"), m.get("lower"), m.get("upper"), boolean=m.get("decision_rule") == "boolean")


@dataclass(frozen=True)
class MeasurementLine:
    """One measurement line read back: what was measured, against which limits, with what
    uncertainty, and the verdict the run gave it (the record's verdict is never re-judged)."""

    test: str
    requirement: str
    quantity: str | None  # None: the requirement's own quantity
    name: str
    value: float | bool | None  # None: a level never reached, or not judged
    unit: str
    lower: float | None
    upper: float | None
    uncertainty: float
    coverage_factor: float | None
    decision_rule: str
    verdict: str  # PASS, FAIL, INCONCLUSIVE, N/A
    tur: float | None
    tur_below_4: bool
    series: str | None  # relative to the run directory
    conditions: Mapping = field(default_factory=dict)
    not_applicable: str | None = None  # why the check could not be judged
    note: str = ""
    utc: str | None = None
    line: Mapping = field(default_factory=dict, repr=False)

    @classmethod
    def from_line(cls, line: Mapping) -> "MeasurementLine":
        if line.get(EVENT_KEY) != Event.MEASUREMENT:
            raise ValueError(f"not a {Event.MEASUREMENT} line but {line.get(EVENT_KEY)!r}")
        return cls(test=line["test"], requirement=line["requirement"], quantity=line.get("quantity"),
                   name=line.get("name", ""), value=line.get("value"), unit=line.get("unit") or "",
                   lower=line.get("lower"), upper=line.get("upper"), uncertainty=line.get("uncertainty") or 0.0,
                   coverage_factor=line.get("coverage_factor"),
                   decision_rule=line.get("decision_rule", "guard-banded"), verdict=line["verdict"],
                   tur=line.get("tur"), tur_below_4=bool(line.get("tur_below_4")), series=line.get("series"),
                   conditions=line.get("conditions") or {}, not_applicable=line.get("not_applicable") or None,
                   note=line.get("note") or "", utc=line.get("utc"), line=line)

    @property
    def id(self) -> str:
        """Its quantity's trace id (ER-NORISE.rise)."""
        return quantity_id(self.requirement, self.quantity)

    @property
    def closeness(self) -> float:
        return closeness(self.line)

    def value_text(self) -> str:
        return value_text(self.line)

    def limit_text(self) -> str:
        return limit_text(self.line)

    def u_text(self) -> str:
        return u_text(self.line)


def measurements_of(events: Iterable[Mapping]) -> list[MeasurementLine]:
    return [MeasurementLine.from_line(e) for e in lines_of(events, Event.MEASUREMENT)]


# ---------------------------------------------------------------- the atomic writer
# ---------------------------------------------------------------- following a file
class LineTail:
    """Reading a JSON-lines file that another process is still appending to.

    The run's files are append-only and written line by line, but a read can land in the
    middle of a line being written. Only complete lines are returned; the torn tail is kept
    and completed by the next read, so no line is lost or parsed half. Reads go by byte
    offset, so following a long run costs only what was appended since the last look.

    `key`: the field every line names its kind by (a run record's "event"); a line
    without it is damage like a line that is not JSON."""

    def __init__(self, path: Path, key: str | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.offset = 0
        self._partial = b""
        #: complete lines read so far, blank ones included; None after skip_to (not counted from the start)
        self.lines: int | None = 0
        #: the lines that did not decode, by line number (Damage), oldest first
        self.damage: list[Damage] = []

    def size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def skip_to(self, offset: int) -> None:
        """Start reading at the first line that begins at or after `offset` (a long finished
        feed: only its end is shown, so its start is not worth parsing)."""
        if offset <= self.offset:
            return
        self.offset, self._partial, self.lines = offset, b"", None
        try:
            with open(self.path, "rb") as f:
                f.seek(offset - 1)
                if f.read(1) != b"\n":
                    rest = f.readline()
                    self.offset += len(rest)
        except OSError:
            pass

    def read_lines(self, limit: int | None = None) -> list[bytes]:
        """The complete lines appended since the last read (without their newline)."""
        return [raw for raw in self._complete_lines(limit) if raw.strip()]

    def _complete_lines(self, limit: int | None) -> list[bytes]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read() if limit is None else f.read(limit)
        except OSError:  # not there yet: a run directory announced before its first line
            return []
        if not data:
            return []
        self.offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        return complete

    def read(self, limit: int | None = None) -> list[dict]:
        """The complete lines appended since the last read, parsed; a line that does not
        decode is skipped and kept in `damage` with its line number (the lines after it are
        read as ever: one broken line never ends the file)."""
        out = []
        for raw in self._complete_lines(limit):
            if self.lines is not None:
                self.lines += 1
            if not raw.strip() and self.key is None:
                continue  # a feed's blank line is nothing; a record never writes one
            line, problem = decode_line(raw, self.key)
            if line is None:
                if self.lines is not None:
                    self.damage.append(Damage(self.lines, problem))
                continue
            out.append(line)
        return out


def first_line(path: Path, max_bytes: int = 1 << 20) -> dict | None:
    """The first line of a JSON-lines file (a run record's run-start), or None."""
    try:
        with open(path, "rb") as f:
            raw = f.readline(max_bytes)
    except OSError:
        return None
    try:
        line = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return line if isinstance(line, dict) else None


def last_line(path: Path, max_bytes: int = 64 * 1024) -> dict | None:
    """The last complete line of a JSON-lines file (whether a record ends with run-end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return None
    for raw in reversed(data.split(b"\n")):
        if raw.strip():
            try:
                line = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a torn last line: the one before it is the last complete one
            return line if isinstance(line, dict) else None
    return None


# ---------------------------------------------------------------- the page-answer protocol
#: the longest operator name an answer may carry (the terminal's name prompt too)
MAX_NAME = 80
#: the answer that gives up on a step, valid for every step
ABORT = "abort"


def operator_name(value) -> str | None:
    """A name an answer may be recorded with (1 to MAX_NAME characters once stripped), else None."""
    name = value.strip() if isinstance(value, str) else ""
    return name if 0 < len(name) <= MAX_NAME else None


def answer_refusal(answer: str, operator: str | None, choices: Sequence[str]) -> str | None:
    """Why an answer to the open question cannot count (the console records this reason;
    the panel refuses to send it), or None when it can: a name is missing, or the answer is
    none of the step's choices nor ABORT."""
    if operator_name(operator) is None:
        return f"no operator name (1 to {MAX_NAME} characters)"
    allowed = [str(c).lower() for c in choices]
    if answer != ABORT and answer not in allowed:
        return f"{answer!r} is not an answer to this step (one of {', '.join([*allowed, ABORT])})"
    return None


@dataclass
class PageAnswer:
    """One line of answers.jsonl as the console reads it (every field text, cleaned)."""

    ask: str
    answer: str
    operator: str
    where: str
    client: str
    utc: str

    @classmethod
    def parse(cls, line: dict) -> "PageAnswer":
        def text(key: str) -> str:
            value = line.get(key)
            return value.strip() if isinstance(value, str) else ""

        return cls(text("ask"), text("answer").lower(), text("operator"), text("where") or "page", text("client"),
                   text("utc"))


class PageAnswers:
    """The complete lines appended to answers.jsonl since the last read (a torn last line
    waits for its end: the panel writes each line in one append under a lock)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ANSWERS_NAME
        self._tail = LineTail(self.path)

    def new(self) -> list[PageAnswer]:
        out = []
        for raw in self._tail.read_lines():
            try:
                line = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                line = {"answer": raw.decode("utf-8", "replace")[:200]}
            out.append(PageAnswer.parse(line if isinstance(line, dict) else {}))
        return out


def append_answer(run_dir: Path, ask: str, answer: str, operator: str, client: str) -> dict:
    """Append one page answer to the run's answers.jsonl as docs/panel-protocol.md says (one
    line in one write, under an exclusive flock: several panels cannot interleave their
    lines); returns the line written."""
    line = {"ask": ask, "answer": answer, "operator": operator, "where": "page", "client": client, "utc": utc_stamp()}
    data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(Path(run_dir) / ANSWERS_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return line
