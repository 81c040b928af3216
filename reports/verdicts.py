"""Per-requirement verdicts from a run record: the view `rig run` prints and the
report's traceability matrix starts from. Every requirement of the specification
appears, including those no measurement reached (NOT RUN). A measurement that was not
applicable (N/A: a precondition of its check did not hold) counts, with its reason,
but decides nothing: a requirement with nothing else stays NOT RUN."""

from __future__ import annotations

from dataclasses import dataclass, field

from reports.record import read_record

ORDER = {"FAIL": 0, "INCONCLUSIVE": 1, "NOT RUN": 2, "PASS": 3, "N/A": 4}
NOT_APPLICABLE = "N/A"


@dataclass
class RequirementResult:
    id: str
    title: str
    source: str
    decision_rule: str
    verdict: str = "NOT RUN"
    worst: dict | None = None  # the measurement line that decides the verdict
    measurements: int = 0
    tests: set = field(default_factory=set)
    tur_flags: int = 0
    not_applicable: int = 0  # measurements whose check could not be judged
    not_applicable_reasons: list = field(default_factory=list)  # distinct reasons, first seen first


@dataclass
class RunSummary:
    start: dict
    end: dict | None
    results: list[RequirementResult]
    tests: dict  # nodeid -> outcome
    events: list[dict]
    judged: set = field(default_factory=set)  # tests that failed on their verdicts alone (they did complete)

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
        return "PASS"

    @property
    def errored_tests(self) -> list[str]:
        """Tests that broke off (an error, a timeout, a failure other than their verdicts):
        the requirements they were verifying may be half verified."""
        return [t for t, outcome in self.tests.items() if outcome not in ("passed", "skipped") and t not in self.judged]


def _closeness(m: dict) -> float:
    """How close a measurement came to its limits (larger is worse). A boolean that held is
    never closer than a measured value: an operator's observation traced to a guard-banded
    requirement must not hide that requirement's worst measured value."""
    if m.get("decision_rule") == "boolean":
        return float("-inf") if m.get("value") else 1.0
    value, lo, hi = m.get("value"), m.get("lower"), m.get("upper")
    if value is None:
        return float("inf")
    worst = float("-inf")
    if hi is not None:
        worst = max(worst, (value - hi) / (abs(hi) or 1.0))
    if lo is not None:
        worst = max(worst, (lo - value) / (abs(lo) or 1.0))
    return worst


def summarise(run_dir) -> RunSummary:
    events = read_record(run_dir)
    start = next((e for e in events if e["event"] == "run-start"), None)
    if start is None:
        raise ValueError(f"{run_dir}: no run-start line: not a traction-rig run record")
    end = next((e for e in reversed(events) if e["event"] == "run-end"), None)
    spec = start["specification"]
    results = {r["id"]: RequirementResult(r["id"], r["title"], r["source"], r.get("decision_rule", "guard-banded"))
               for r in spec["requirements"]}
    tests: dict[str, str] = {}
    judged: set[str] = set()
    for e in events:
        if e["event"] == "measurement" and e["requirement"] in results:
            r = results[e["requirement"]]
            r.measurements += 1
            r.tests.add(e["test"])
            v = e["verdict"]
            if v == NOT_APPLICABLE:
                r.not_applicable += 1
                if e.get("not_applicable") and e["not_applicable"] not in r.not_applicable_reasons:
                    r.not_applicable_reasons.append(e["not_applicable"])
                continue
            r.tur_flags += bool(e.get("tur_below_4"))
            if r.worst is None or (ORDER[v], -_closeness(e)) < (ORDER[r.worst["verdict"]], -_closeness(r.worst)):
                r.worst = e
            r.verdict = v if r.verdict == "NOT RUN" else min(r.verdict, v, key=ORDER.get)
        elif e["event"] == "test-end":
            if e.get("when") == "call" or e.get("outcome") != "passed":
                tests[e["test"]] = e["outcome"]
                (judged.add if e.get("judged") else judged.discard)(e["test"])
    return RunSummary(start, end, list(results.values()), tests, events, judged)


def format_value(m: dict | None) -> tuple[str, str, str]:
    """A deciding measurement as the verdict table shows it: (worst value, limit, U); the
    terminal table of `rig run` and the panel's page say the same thing the same way."""
    if m is None:
        return "—", "—", "—"
    if m.get("decision_rule") == "boolean":
        return ("holds" if m["value"] else "VIOLATED"), "must hold", "—"
    unit = m.get("unit") or ""
    value = m["value"]
    text = "never" if value is None else f"{value:.4g} {unit}"
    lo, hi = m.get("lower"), m.get("upper")
    limit = f"≤ {hi:.4g} {unit}" if hi is not None and lo is None else f"≥ {lo:.4g} {unit}" if lo is not None and hi is None else f"{lo:.4g} … {hi:.4g} {unit}"
    return text, limit, f"± {m.get('uncertainty', 0):.2g} {unit}"
