"""One run as the panel sees it, rebuilt from the files the run writes.

The follower is the only thing that reads the run directory. Each poll takes what was
appended since the last one (record.jsonl, live.jsonl, by byte offset) and the current
heartbeat.json, updates the panel's state and returns what changed as (section, value)
pairs, so a page that has the full state once can be kept current with small events.
Sections are replaced whole (they are small); the force trace alone goes by increments,
since it is the only thing that arrives many times a second.

The verdict table is not rebuilt from the lines here: reports.verdicts.summarise is the
one definition of a verdict (the terminal table and the report use it), so the page runs
it too, at most once a second and only when something that can change a verdict came in.
"""

from __future__ import annotations

import collections
import json
import math
import os
import time
from pathlib import Path

from reports.exit_status import rig_run_exit_status
from reports.panel.estimate import estimate, previous_durations, test_spans
from reports.rundir import (EVENT_KEY, HEARTBEAT_NAME, LIVE_ANGLES, LIVE_KEY, LIVE_NAME, RECORD_NAME, Event, LineTail, Live,
                            RunStart, first_line, utc_stamp)

#: wall seconds of force trace the page shows
TRACE_WINDOW_S = 30.0
#: the verdict table is recomputed at most this often (wall s)
VERDICTS_EVERY_S = 1.0
#: a finished feed longer than this is read from its last this many bytes only
LIVE_CATCHUP_BYTES = 8 << 20
#: closed steps and refusals the page lists (newest last)
KEEP_ANSWERS = 30
#: lines that can change a verdict or the overall verdict
_VERDICT_EVENTS = {Event.MEASUREMENT, Event.TEST_END, Event.RUN_END}
_PROGRESS_EVENTS = {Event.SESSION_PLAN, Event.TEST_START, Event.TEST_END, Event.RUN_END, Event.RUN_START}
#: the parts of the state the page replaces whole
SECTIONS = ("identity", "progress", "context", "verdicts", "heartbeat", "operator", "end")


def identity_of(start: RunStart) -> dict:
    """Who and what is under test: the run-start line as the page shows it."""
    table, gauge, cal, spec = start.table, start.gauge, start.gauge.calibration, start.spec
    return {
        "rig": start.rig_name,
        "emulated": start.emulated,
        "time_scale": start.time_scale,
        "table": {"serial": table.serial, "firmware": table.firmware_text, "kind": table.kind, "model": table.model},
        "gauge": {"model": gauge.model, "serial": gauge.serial, "dialect": gauge.dialect},
        "calibration": {"certificate": cal.certificate, "due": cal.due, "expired": cal.expired},
        "specification": {"name": spec.name, "title": spec.title, "version": spec.version},
        "operator": start.operator,
        "started_utc": start.utc,
        "worker": start.worker,
    }


def page_verdicts(summary) -> dict:
    """The verdict table as the page shows it, formatted as `rig run` prints it."""
    from reports.rundir import format_value
    from reports.verdicts import verdict_rows

    rows = []
    counts: dict[str, int] = collections.Counter(r.verdict for r in summary.results)
    for row in verdict_rows(summary.results):
        rid, title, r = row.id, row.title, row.tally
        try:
            worst, limit, u = format_value(r.worst)
        except (TypeError, ValueError, KeyError):
            worst, limit, u = "?", "?", "?"
        rows.append({"requirement": rid, "title": title, "worst": worst, "limit": limit, "u": u,
                     "verdict": r.verdict, "measurements": r.measurements, "tur_flags": r.tur_flags,
                     "not_applicable": r.not_applicable,
                     "not_applicable_reason": r.not_applicable_reasons[0] if r.not_applicable_reasons else None,
                     "worst_name": (r.worst or {}).get("name")})
    return {"rows": rows, "overall": summary.overall, "complete": summary.complete,
            "errored": summary.errored_tests, "counts": dict(counts),
            "damage": summary.damage_text, "damage_lines": [d.line for d in summary.damage]}


class RunFollower:
    def __init__(self, run_dir: Path, run_id: int, clock=time.monotonic) -> None:
        self.dir = Path(run_dir)
        self.id = run_id
        self.clock = clock
        self.record = LineTail(self.dir / RECORD_NAME, key=EVENT_KEY)
        self.live = LineTail(self.dir / LIVE_NAME)
        self._caught_up_live = False
        self.start: RunStart | None = None
        self.identity: dict | None = None
        self.plan: list[dict] | None = None
        self.outcomes: dict[str, str] = {}  # test -> outcome (the worst of its test-end lines)
        self.current: dict | None = None
        self._timeline: list[dict] = []  # test-start/test-end/run-end lines: the durations
        self.previous: tuple[str, dict] | None = None
        self.live_start: dict | None = None
        self.context: dict | None = None
        self.latest_status: dict | None = None
        self.status_t: collections.deque = collections.deque(maxlen=int(TRACE_WINDOW_S * 60) + 100)
        self.status_f: collections.deque = collections.deque(maxlen=int(TRACE_WINDOW_S * 60) + 100)
        self.gauge_t: collections.deque = collections.deque(maxlen=int(TRACE_WINDOW_S * 300) + 500)
        self.gauge_f: collections.deque = collections.deque(maxlen=int(TRACE_WINDOW_S * 300) + 500)
        #: the section's angles the status lines carried (a flexion-distraction table), by name, on status_t's times
        self.angle_t: collections.deque = collections.deque(maxlen=int(TRACE_WINDOW_S * 60) + 100)
        self.angles: dict[str, collections.deque] = {
            name: collections.deque(maxlen=int(TRACE_WINDOW_S * 60) + 100) for name in LIVE_ANGLES}
        self.asks: dict[str, dict] = {}
        self.steps: dict[str, dict] = {}
        self.refused: list[dict] = []
        self.sent: dict[str, dict] = {}  # answers this panel wrote: ask -> what and by whom
        self.end: dict | None = None
        self.not_safe = False  # a record line said TABLE NOT CONFIRMED SAFE
        self.links: list[dict] = []
        self.record_heartbeat: dict | None = None  # the record's closing heartbeat summary
        self.heartbeat: dict | None = None
        self._hb_stamp = None
        self.verdicts: dict | None = None
        self._verdicts_due = False
        self._verdicts_at = -math.inf
        self._sent_sections: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.dir.name

    # ------------------------------------------------------------ reading
    def poll(self) -> list[tuple[str, dict]]:
        """Read what is new; (section, value) for every section that changed, and ("trace",
        the new samples) when force samples arrived."""
        touched: set[str] = set()
        damaged = len(self.record.damage)
        for line in self.record.read():
            touched |= self._record_line(line)
        if len(self.record.damage) != damaged:  # a skipped line: the table must say so, and cannot end PASS
            self._verdicts_due = True
        trace = self._read_live(touched)
        self._read_heartbeat(touched)
        if self.end is not None:
            self._find_links(touched)
        if self._verdicts_due and self.clock() - self._verdicts_at >= VERDICTS_EVERY_S:
            self._recompute_verdicts(touched)
        changes = []
        for section in SECTIONS:
            if section in touched:
                change = self.changed(section)
                if change is not None:
                    changes.append(change)
        if trace is not None:
            changes.append(("trace", trace))
        return changes

    def _record_line(self, e: dict) -> set[str]:
        kind = e.get(EVENT_KEY)
        touched = set()
        if kind in _VERDICT_EVENTS:
            self._verdicts_due = True
        if kind in _PROGRESS_EVENTS:
            touched.add("progress")
        if kind == Event.RUN_START:
            self.start = start = RunStart.from_line(e)
            self.identity = identity_of(start)
            touched.add("identity")
            self.previous = previous_durations(self.dir, start.spec.name, start.utc)
        elif kind == Event.SESSION_PLAN:
            self.plan = [t for t in e.get("tests") or [] if isinstance(t, dict) and t.get("test")]
        elif kind == Event.TEST_START:
            test = e.get("test")
            self.current = {"test": test, "requirements": e.get("requirements") or [], "started_utc": e.get("utc")}
            self._timeline.append(e)
        elif kind == Event.TEST_END:
            test = e.get("test")
            outcome = e.get("outcome") or "?"
            if self.outcomes.get(test) in (None, "passed", "skipped") or outcome not in ("passed", "skipped"):
                self.outcomes[test] = outcome
            if self.current and self.current["test"] == test:
                self.current = None
            self._timeline.append(e)
        elif kind == Event.RUN_END:
            self.end = e
            self.current = None
            self._timeline.append(e)
            touched |= {"end", "operator", "heartbeat"}
        elif kind == Event.OPERATOR_ASK and e.get("ask") is not None:
            self.asks[str(e["ask"])] = e
            touched.add("operator")
        elif kind == Event.OPERATOR_STEP and e.get("ask") is not None:
            self.steps[str(e["ask"])] = e
            touched.add("operator")
        elif kind == Event.OPERATOR_ANSWER_REFUSED:
            self.refused = [*self.refused, e][-KEEP_ANSWERS:]
            touched.add("operator")
        elif kind == Event.HEARTBEAT:
            self.record_heartbeat = e
            touched.add("heartbeat")
        elif kind == Event.TABLE_NOT_SAFE:
            self.not_safe = True
            touched.add("end")
        return touched

    def _read_live(self, touched: set[str]) -> dict | None:
        if not self._caught_up_live:
            self._caught_up_live = True
            size = self.live.size()
            if size > LIVE_CATCHUP_BYTES:  # a long feed: its start line, then only its end
                start = first_line(self.live.path)
                if start and start.get(LIVE_KEY) == Live.START:
                    self.live_start = start
                self.live.skip_to(size - LIVE_CATCHUP_BYTES)
        new_status_t, new_status_f, new_gauge_t, new_gauge_f = [], [], [], []
        new_angle_t, new_angles = [], {name: [] for name in LIVE_ANGLES}
        status_seen = context_changed = False
        for line in self.live.read():
            k = line.get(LIVE_KEY)
            if k == Live.STATUS:
                self.latest_status, status_seen = line, True
                t, f = line.get("t"), line.get("force_n")
                if isinstance(t, (int, float)) and isinstance(f, (int, float)):
                    new_status_t.append(t)
                    new_status_f.append(f)
                if isinstance(t, (int, float)) and any(name in line for name in LIVE_ANGLES):
                    new_angle_t.append(t)
                    for name in LIVE_ANGLES:
                        a = line.get(name)
                        new_angles[name].append(a if isinstance(a, (int, float)) else None)
            elif k == Live.GAUGE:
                ts, fs = line.get("t") or [], line.get("f") or []
                for t, f in zip(ts, fs):
                    if isinstance(t, (int, float)) and isinstance(f, (int, float)):
                        new_gauge_t.append(t)
                        new_gauge_f.append(f)
            elif k == Live.CONTEXT:
                self.context = {key: v for key, v in line.items() if key != LIVE_KEY}
                context_changed = True
            elif k == Live.START:
                if self.live_start is not None:  # a feed begun again: its times start again too
                    for d in (self.status_t, self.status_f, self.gauge_t, self.gauge_f, self.angle_t,
                              *self.angles.values()):
                        d.clear()
                self.live_start = line
        if context_changed:
            touched.add("context")
        if not (status_seen or new_gauge_t):
            return None
        self.status_t.extend(new_status_t)
        self.status_f.extend(new_status_f)
        self.gauge_t.extend(new_gauge_t)
        self.gauge_f.extend(new_gauge_f)
        self.angle_t.extend(new_angle_t)
        for name, values in new_angles.items():
            self.angles[name].extend(values)
        self._trim()
        return {"status": {"t": new_status_t, "f": new_status_f}, "gauge": {"t": new_gauge_t, "f": new_gauge_f},
                "angle": {"t": new_angle_t, **new_angles}, "latest": self._latest(), "window_s": TRACE_WINDOW_S}

    def _trim(self) -> None:
        newest = max(self.status_t[-1] if self.status_t else -math.inf, self.gauge_t[-1] if self.gauge_t else -math.inf)
        if newest == -math.inf:
            return
        oldest = newest - TRACE_WINDOW_S
        while self.status_t and self.status_t[0] < oldest:
            self.status_t.popleft()
            self.status_f.popleft()
        while self.gauge_t and self.gauge_t[0] < oldest:
            self.gauge_t.popleft()
            self.gauge_f.popleft()
        while self.angle_t and self.angle_t[0] < oldest:
            self.angle_t.popleft()
            for d in self.angles.values():
                d.popleft()

    def _latest(self) -> dict:
        st = self.latest_status or {}
        return {"t": st.get("t"), "force_n": st.get("force_n"), "phase": st.get("phase"), "estop": st.get("estop"),
                "fault": st.get("fault"), "tripped": st.get("tripped"),
                "gauge_t": self.gauge_t[-1] if self.gauge_t else None,
                "gauge_n": self.gauge_f[-1] if self.gauge_f else None,
                **{name: st.get(name) for name in LIVE_ANGLES}}

    def _read_heartbeat(self, touched: set[str]) -> None:
        path = self.dir / HEARTBEAT_NAME
        try:
            st = os.stat(path)
        except OSError:
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._hb_stamp:
            return
        try:
            with open(path, encoding="utf-8") as f:
                value = json.load(f)
        except (OSError, ValueError):
            return  # replaced atomically, so a bad read is a bad file: the last good one stays
        if isinstance(value, dict):
            self._hb_stamp = stamp
            self.heartbeat = value
            touched.add("heartbeat")

    def _find_links(self, touched: set[str]) -> None:
        candidates = [("report (HTML)", "report/report.html"), ("report (PDF)", "report/report.pdf"),
                      ("Allure report", "report/allure/index.html"), ("Allure report", "allure-report/index.html")]
        links, names = [], set()
        for name, rel in candidates:
            if name not in names and (self.dir / rel).is_file():
                names.add(name)
                links.append({"name": name, "href": f"report/{self.id}/{rel}", "file": rel})  # under the key
        if links != self.links:
            self.links = links
            touched.add("end")

    def _recompute_verdicts(self, touched: set[str]) -> None:
        from reports.verdicts import summarise

        self._verdicts_due = False
        self._verdicts_at = self.clock()
        if self.start is None:
            return
        try:
            self.verdicts = page_verdicts(summarise(self.dir))
        except (OSError, ValueError, KeyError, TypeError):
            return  # a record the table cannot be made from yet: the last table stays
        touched.add("verdicts")
        if self.end is not None:
            touched.add("end")  # the banner says the overall verdict and rig run's exit status

    # ------------------------------------------------------------ the state
    def changed(self, section: str) -> tuple[str, object] | None:
        """(section, value) unless the page has this very value already."""
        value = self.section(section)
        text = json.dumps(value, sort_keys=True, default=str)
        if self._sent_sections.get(section) == text:
            return None
        self._sent_sections[section] = text
        return section, value

    def section(self, name: str):
        return getattr(self, f"_section_{name}")()

    def _section_identity(self):
        return self.identity

    def _section_context(self):
        return self.context

    def _section_verdicts(self):
        return self.verdicts

    def _section_progress(self) -> dict:
        planned = self.plan
        done = set(self.outcomes)
        current = self.current["test"] if self.current else None
        if planned is not None:
            order = [t["test"] for t in planned]
            est = estimate(order, done, current, test_spans(self._timeline), self.previous)
        else:
            est = {"known": False, "basis": "no estimate: the run did not record its plan (session-plan)",
                   "source": "none", "after_current_s": None, "current_s": None}
        return {"planned": planned, "count": len(planned) if planned is not None else None,
                "done": len(done), "outcomes": self.outcomes, "current": self.current,
                "started_utc": self.start.utc if self.start else None, "ended": self.end is not None,
                "estimate": est, "now_utc": utc_stamp()}

    def _section_heartbeat(self) -> dict | None:
        scale = (self.start.time_scale if self.start else None) or 1.0
        hb = self.heartbeat
        if hb is not None:
            scale = hb.get("time_scale") or scale
            period = hb.get("period_table_s")
            period_s = period / scale if period else None
            max_gap = (hb.get("max_gap_ns") or 0) / 1e9
            return {"source": "live", "utc": hb.get("utc"), "beats": hb.get("beats"), "errors": hb.get("errors"),
                    "max_gap_s": max_gap, "period_s": period_s,
                    "gap_ratio": (max_gap / period_s) if period_s else None,
                    "last_rtt_ms": (hb.get("last_rtt_ns") or 0) / 1e6, "max_rtt_ms": (hb.get("max_rtt_ns") or 0) / 1e6,
                    "last_error": hb.get("last_error") or None, "running": bool(hb.get("running", True)),
                    "ended": self.end is not None}
        hb = self.record_heartbeat
        if hb is not None:  # a run from before heartbeat.json: its closing summary
            period = hb.get("period_table_s")
            period_s = period / scale if period else None
            max_gap = hb.get("max_gap_wall_s") or 0.0
            return {"source": "record", "utc": hb.get("utc"), "beats": hb.get("beats"), "errors": hb.get("errors"),
                    "max_gap_s": max_gap, "period_s": period_s,
                    "gap_ratio": (max_gap / period_s) if period_s else None, "last_rtt_ms": None,
                    "max_rtt_ms": (hb.get("max_round_trip_wall_s") or 0) * 1e3,
                    "last_error": hb.get("last_error") or None, "running": False, "ended": True}
        return None

    def open_questions(self) -> list[dict]:
        if self.end is not None:
            return []
        return [q for ask, q in self.asks.items() if ask not in self.steps]

    def _section_operator(self) -> dict:
        return {"open": [{**q, "sent": self.sent.get(str(q["ask"]))} for q in self.open_questions()],
                "asks": {ask: {k: q.get(k) for k in ("ask", "step", "test", "requirements", "instruction", "choices")}
                         for ask, q in list(self.asks.items())[-KEEP_ANSWERS:]},
                "closed": [self.steps[a] for a in list(self.steps)[-KEEP_ANSWERS:]],
                "refused": self.refused, "sent": self.sent, "ended": self.end is not None}

    def _section_end(self) -> dict | None:
        if self.end is None:
            return None
        overall = (self.verdicts or {}).get("overall")
        pytest_status = self.end.get("exitstatus")
        return {"utc": self.end.get("utc"), "complete": self.end.get("complete"), "overall": overall,
                # what `rig run` gives for this run (pytest's own status, in the line, is not it)
                "exit_status": (rig_run_exit_status(pytest_status, [overall], not_safe=self.not_safe)
                                if isinstance(pytest_status, int) and overall else None),
                "links": self.links}

    def trace(self) -> dict:
        return {"status": {"t": list(self.status_t), "f": list(self.status_f)},
                "gauge": {"t": list(self.gauge_t), "f": list(self.gauge_f)},
                "angle": {"t": list(self.angle_t), **{name: list(d) for name, d in self.angles.items()}},
                "latest": self._latest(),
                "window_s": TRACE_WINDOW_S}

    def snapshot(self) -> dict:
        """The whole state of this run (the page's `init`)."""
        out = {"id": self.id, "name": self.name, "dir": str(self.dir), "trace": self.trace()}
        for section in SECTIONS:
            out[section] = self.section(section)
        return out

    def note_sent(self, ask: str, line: dict) -> None:
        self.sent[ask] = {k: line[k] for k in ("answer", "operator", "client", "utc")}
