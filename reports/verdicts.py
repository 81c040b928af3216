"""Per-requirement verdicts from a run record: the view `rig run` prints and the
report's traceability matrix starts from. Every requirement of the specification
appears, including those no measurement reached (NOT RUN). A measurement that was not
applicable (N/A: a precondition of its check did not hold) counts, with its reason,
but decides nothing: a requirement with nothing else stays NOT RUN."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["NOT_APPLICABLE", "ORDER", "QuantityResult", "RequirementResult", "RunSummary", "Tally", "VerdictRow",
           "summarise", "verdict_rows"]

from reports.rundir import NOT_APPLICABLE, Damage, Event, RunStart, closeness, damage_text, scan_record
from verification.spec import quantity_id

ORDER = {"FAIL": 0, "INCONCLUSIVE": 1, "NOT RUN": 2, "PASS": 3, NOT_APPLICABLE: 4}


@dataclass(kw_only=True)
class Tally:
    """What the measurements of one requirement, or of one of its quantities, add up to."""

    verdict: str = "NOT RUN"
    worst: dict | None = None  # the measurement line that decides the verdict
    measurements: int = 0
    tests: set = field(default_factory=set)
    tur_flags: int = 0
    not_applicable: int = 0  # measurements whose check could not be judged
    not_applicable_reasons: list = field(default_factory=list)  # distinct reasons, first seen first

    def add(self, e: dict) -> None:
        self.measurements += 1
        self.tests.add(e["test"])
        v = e["verdict"]
        if v == NOT_APPLICABLE:
            self.not_applicable += 1
            if e.get("not_applicable") and e["not_applicable"] not in self.not_applicable_reasons:
                self.not_applicable_reasons.append(e["not_applicable"])
            return
        self.tur_flags += bool(e.get("tur_below_4"))
        if self.worst is None or (ORDER[v], -closeness(e)) < (ORDER[self.worst["verdict"]], -closeness(self.worst)):
            self.worst = e
        self.verdict = v if self.verdict == "NOT RUN" else min(self.verdict, v, key=ORDER.get)


@dataclass(kw_only=True)
class QuantityResult(Tally):
    id: str  # quantity_id: ER-NORISE, ER-NORISE.rise
    key: str | None  # None: the requirement's own quantity
    quantity: str  # what is measured, as the specification says it
    unit: str = ""


@dataclass(kw_only=True)
class RequirementResult(Tally):
    """A requirement's verdict (the worst of its quantities') and, for a requirement that
    bounds more than one quantity (ER-NORISE: how long and how much the force rose), each
    quantity's own verdict and deciding measurement."""

    id: str
    title: str
    source: str
    decision_rule: str
    quantities: list[QuantityResult] = field(default_factory=list)  # its own first, then `also:`

    def quantity(self, key: str | None) -> QuantityResult | None:
        return next((q for q in self.quantities if q.key == key), None)


@dataclass
class RunSummary:
    start: dict
    end: dict | None
    results: list[RequirementResult]
    tests: dict  # nodeid -> outcome
    events: list[dict]
    judged: set = field(default_factory=set)  # tests that failed on their verdicts alone (they did complete)
    #: lines of the record that did not decode: whatever they held is missing, so the run cannot PASS
    damage: tuple[Damage, ...] = ()

    @property
    def run_start(self) -> RunStart:
        """The run-start line read (reports.rundir.RunStart): who and what the run verified."""
        return RunStart.from_line(self.start)

    @property
    def damage_text(self) -> str | None:
        """"record damaged at line N (…)", or None for an intact record."""
        return damage_text(self.damage)

    @property
    def complete(self) -> bool:
        return bool(self.end and self.end.get("complete"))

    @property
    def overall(self) -> str:
        verdicts = [r.verdict for r in self.results]
        if "FAIL" in verdicts:
            return "FAIL"
        if "INCONCLUSIVE" in verdicts or "NOT RUN" in verdicts or not self.complete:
            return "INCONCLUSIVE"
        if self.errored_tests:
            return "INCONCLUSIVE"  # a test that broke off may have left a requirement half verified
        if self.damage:
            return "INCONCLUSIVE"  # a skipped line may have held a measurement that failed
        return "PASS"

    @property
    def errored_tests(self) -> list[str]:
        """Tests that broke off (an error, a timeout, a failure other than their verdicts):
        the requirements they were verifying may be half verified."""
        return [t for t, outcome in self.tests.items() if outcome not in ("passed", "skipped") and t not in self.judged]



def summarise(run_dir) -> RunSummary:
    read = scan_record(run_dir)
    events = read.events
    start = next((e for e in events if e["event"] == Event.RUN_START), None)
    if start is None:
        damaged = f" ({read.damage_text()})" if read.damaged else ""
        raise ValueError(f"{run_dir}: no run-start line{damaged}: not a traction-rig run record")
    end = next((e for e in reversed(events) if e["event"] == Event.RUN_END), None)
    spec = start["specification"]
    results = {}
    for r in spec["requirements"]:
        own = QuantityResult(id=r["id"], key=None, quantity=r.get("quantity", ""), unit=r.get("unit") or "")
        further = [QuantityResult(id=quantity_id(r["id"], q["key"]), key=q["key"], quantity=q.get("quantity", ""),
                                  unit=q.get("unit") or "") for q in r.get("also") or []]
        results[r["id"]] = RequirementResult(id=r["id"], title=r["title"], source=r["source"],
                                             decision_rule=r.get("decision_rule", "guard-banded"),
                                             quantities=[own, *further])
    tests: dict[str, str] = {}
    judged: set[str] = set()
    for e in events:
        if e["event"] == Event.MEASUREMENT and e["requirement"] in results:
            r = results[e["requirement"]]
            r.add(e)
            q = r.quantity(e.get("quantity"))
            if q is None:  # a quantity the record's specification does not name: its own row, never lost
                q = QuantityResult(id=quantity_id(r.id, e.get("quantity")), key=e.get("quantity"), quantity="",
                                   unit=e.get("unit") or "")
                r.quantities.append(q)
            q.add(e)
        elif e["event"] == Event.TEST_END:
            if e.get("when") == "call" or e.get("outcome") != "passed":
                tests[e["test"]] = e["outcome"]
                (judged.add if e.get("judged") else judged.discard)(e["test"])
    for r in results.values():
        if r.verdict == "PASS" and any(q.verdict == "NOT RUN" for q in r.quantities):
            r.verdict = "NOT RUN"  # a quantity it bounds was never measured: not verified
    return RunSummary(start, end, list(results.values()), tests, events, judged, read.damage)


class VerdictRow(NamedTuple):
    id: str  # the quantity's trace id: ER-HALF, ER-NORISE, ER-NORISE.rise
    title: str
    tally: Tally  # the requirement's own, or one quantity's
    requirement: RequirementResult
    key: str | None  # the further quantity's key; None: the requirement's own quantity


def verdict_rows(results: list[RequirementResult]) -> list[VerdictRow]:
    """One row per verdict-table row: a requirement, or each quantity of a requirement that
    bounds several (ER-NORISE, ER-NORISE.rise), so every quantity shows its own worst value
    against its own limit. The terminal table, the page and the report list the same rows."""
    rows = []
    for r in results:
        if len(r.quantities) <= 1:
            rows.append(VerdictRow(r.id, r.title, r, r, None))
            continue
        for q in r.quantities:
            rows.append(VerdictRow(q.id, r.title if q.key is None else f"{r.title} — {q.quantity}", q, r, q.key))
    return rows

