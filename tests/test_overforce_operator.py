"""IL-OVERFORCE pulled by a person: `rig run -k overforce` end to end against the emulated
table, this test acting as the person at the bench through the panel's page — it follows
the run record for `operator-ask` lines and answers them in `answers.jsonl`
(docs/panel-protocol.md). For the `pull` step it pulls the emulated harness with the
patient simulator at a person's pace (hundreds of N/s, not the emulated snag's 20 × the
limit per second), watching the table's force display as a person watches the gauge:
when the force is well past the limit and nothing tripped, it stops pulling harder and
says `done`.

On the nominal table the operator-assisted test measures IL-OVERFORCE and PASSes; with
`late-overforce-trip` (the trip debounced 300 ms) it FAILs; without anyone to ask it is
skipped with the reason, and on the emulator without --operator-overforce the patient
simulator's own test stands in for it. Every wait is bounded. `pytest.main` cannot run
twice in one process (labgrid's plugin), hence the children (tests/child_run.py)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from drivers.controller import TractionController
from drivers.patient_simulator import PatientSimulator
from reports.rundir import Event, RecordRead, append_answer
from tests.child_run import rig_run_argv
from verification.bench import Bench, Capture
from verification.measurement import Verdict
from verification.spec import load_spec
from verification.overforce import analyse_overforce_trip, pull_rates, record_overforce_trip

SPEC = load_spec("lumbar")  # the default rig of `rig run`: the emulated lumbar table
LIMIT_N = SPEC.plan.overforce_limit_n
OP_TEST = "suites/test_interlocks.py::test_overforce_trip_pulled_by_operator"
SNAG_TEST = "suites/test_interlocks.py::test_overforce_trip"
PERSON = "Pat Puller"
CLIENT = "tests/test_overforce_operator.py (a page played by the test)"
PULL_N_S = 200.0  # table N/s: a firm, steady pull by hand (the test asks about 240, no slower than 120)
PULL_MAX_N = 4000.0  # where the pull heads: a person pulls until the table trips, not to a force
GIVE_UP_N = 1.5 * LIMIT_N  # force on the display at which a person stops pulling harder and says done
LET_GO_N_S = 1000.0  # table N/s: letting the pull off
OPERATOR_TIMEOUT_S = 30
RUN_TIMEOUT_S = 150  # wall s for one `rig run` (start of the emulator included)


# ================================================================ the analysis, in process
class FakeBench:
    """What the analysis uses of a Bench: K, table seconds, the gauge's force budget."""

    table_s = Bench.table_s
    force_terms_of = Bench.force_terms_of

    def __init__(self, tripped: bool) -> None:
        self.k = 10.0
        gauge = SimpleNamespace(calibration=SimpleNamespace(expanded_uncertainty_n=0.5, coverage_factor=2.0),
                                resolution_n=0.1)
        self.rig = SimpleNamespace(config=SimpleNamespace(gauge=gauge))
        fault = SimpleNamespace(name="OVERFORCE" if tripped else "NONE")
        self.ctrl = SimpleNamespace(status=lambda: SimpleNamespace(overforce_tripped=tripped, fault_code=fault))


class FakeRecorder:
    def __init__(self) -> None:
        self.measurements = []

    def record(self, m):
        self.measurements.append(m)
        return m


def _pull(rate_n_s: float, give_way_s: float = 5.0, rate_hz: float = 1000.0, seed: int = 3):
    """A gauge trace (table s) of the hold, the table giving way, then a steady rise."""
    t = np.arange(0.0, give_way_s + 1.5 * LIMIT_N / rate_n_s, 1.0 / rate_hz)
    hold = 0.8 * LIMIT_N + min(rate_n_s / 15.0, 5.0)  # a force loop following the pull: a little above the hold
    force = np.where(t < give_way_s, hold, hold + rate_n_s * (t - give_way_s))
    force = force + np.random.default_rng(seed).normal(0.0, 0.1, t.size)
    cap = Capture(t, force, None, 0)
    cap.mapping_half_width_s = 1e-4
    return cap, give_way_s + (LIMIT_N - hold) / rate_n_s


def _reads(until_s: float, trip_s: float | None, every_s: float = 0.02, k: float = 10.0):
    """Status reads (sent ns, reply ns, tripped), each 2 ms (table) long, every `every_s` table s."""
    out = []
    for start in np.arange(0.0, until_s, every_s):
        sent, reply = int(start / k * 1e9), int((start + 0.002) / k * 1e9)
        out.append((sent, reply, trip_s is not None and start >= trip_s))
    return out


def test_a_persons_pull_is_timed_with_its_slope_in_the_budget():
    cap, cross = _pull(200.0)
    a = analyse_overforce_trip(FakeBench(True), cap, 0, _reads(cap.t[-1], cross + 0.010), LIMIT_N)
    assert a.cross == pytest.approx(cross, abs=0.005) and a.slope_n_s == pytest.approx(200.0, rel=0.05)
    assert 0.010 - 0.03 < a.delay < 0.010 + 0.03 and a.half <= 0.012
    # calibration 0.25 N, resolution, noise 0.1 N at 200 N/s: about 1.4 ms
    assert 0.001 < a.crossing_u_s < 0.002
    m = record_overforce_trip(FakeBench(True), FakeRecorder(), SPEC.requirement("IL-OVERFORCE"), LIMIT_N, cap, a,
                              {"pulled_by": "operator"}, series_from_s=a.cross - 2.0)
    assert m.verdict is Verdict.PASS and m.budget[-1].standard == a.crossing_u_s
    assert m.series["t_s"][0] >= a.cross - 2.0 - 1e-9 and m.conditions["latched"] is True


def test_a_snag_crosses_so_fast_that_the_gauge_force_adds_microseconds():
    cap, cross = _pull(20.0 * LIMIT_N, give_way_s=0.3)
    a = analyse_overforce_trip(FakeBench(True), cap, 0, _reads(cap.t[-1], cross + 0.005, every_s=0.005), LIMIT_N)
    assert a.slope_n_s == pytest.approx(20.0 * LIMIT_N, rel=0.1) and a.crossing_u_s < 1e-4


def test_over_the_limit_and_never_tripped_is_a_fail_and_the_latch_check_fails():
    cap, _ = _pull(200.0)
    recorder = FakeRecorder()
    a = analyse_overforce_trip(FakeBench(False), cap, 0, _reads(cap.t[-1], None), LIMIT_N)
    with pytest.raises(AssertionError, match="did not latch"):
        record_overforce_trip(FakeBench(False), recorder, SPEC.requirement("IL-OVERFORCE"), LIMIT_N, cap, a, {})
    (m,) = recorder.measurements
    assert m.value == float("inf") and m.verdict is Verdict.FAIL


def test_never_over_the_limit_is_not_applicable_with_the_reason():
    cap, _ = _pull(200.0)
    keep = cap.force < LIMIT_N - 20.0
    cap = Capture(cap.t[keep], cap.force[keep], None, 0)
    cap.mapping_half_width_s = 1e-4
    recorder = FakeRecorder()
    a = analyse_overforce_trip(FakeBench(False), cap, 0, _reads(cap.t[-1], None), LIMIT_N)
    m = record_overforce_trip(FakeBench(False), recorder, SPEC.requirement("IL-OVERFORCE"), LIMIT_N, cap, a, {})
    assert m.verdict is Verdict.NOT_APPLICABLE
    assert m.not_applicable.startswith("the pull took the gauge force over FORCE_LIMIT: not so — gauge peak 2")


def test_the_person_is_asked_for_a_pull_at_which_a_cell_within_fa_cell_trips_in_time():
    assert pull_rates(SPEC, 300.0) == (240.0, 120.0)  # FA-CELL 6 N at 300 N: 6 N / 50 ms
    assert pull_rates(load_spec("cervical"), 120.0) == (100.0, 50.0)  # 2.4 N at 120 N


# ================================================================ `rig run`, end to end
def _events(record: RecordRead, kind: str) -> list[dict]:
    return record.of(Event(kind))


class Run:
    """`rig run -k overforce` in a child (tests/child_run.py): stdin /dev/null, no terminal."""

    def __init__(self, child_run, *pytest_args: str, fault: str | None = None, keyword: str = "overforce") -> None:
        def argv(runs: Path) -> list[str]:
            return rig_run_argv("-k", keyword, "--no-history", "--no-report", "--run-dir", str(runs),
                                *(["--fault", fault] if fault else []), pytest_args=("-rfEs", *pytest_args))

        self.run = child_run(argv, wait_s=RUN_TIMEOUT_S)
        self.deadline = time.monotonic() + RUN_TIMEOUT_S
        self.answered: set[str] = set()
        self.patient: PatientSimulator | None = None
        self.ctrl: TractionController | None = None

    def output(self) -> str:
        return self.run.output()

    def fail(self, why: str) -> None:
        raise self.run.failure(why)

    def record(self) -> RecordRead:
        return self.run.record()

    def wait(self) -> int:
        return self.run.wait(max(1.0, self.deadline - time.monotonic()))

    # ------------------------------------------------------------ the person at the page
    def answer(self, ask: dict, answer: str = "done") -> None:
        """One answer, appended as a panel appends it (docs/panel-protocol.md)."""
        append_answer(self.run.run_dir(), ask["ask"], answer, PERSON, CLIENT)
        self.answered.add(ask["ask"])

    def open_questions(self) -> list[dict]:
        record = self.record()
        closed = {s.get("ask") for s in _events(record, "operator-step")}
        return [a for a in _events(record, "operator-ask") if a["ask"] not in closed and a["ask"] not in self.answered]

    def connect(self) -> None:
        """The emulated harness and the table's own display, from the run-start line."""
        if self.patient is not None:
            return
        self.k = float(self.run.run_start().time_scale)
        self.patient = self.run.patient_simulator()
        self.ctrl = self.run.controller("the person's eyes on the table's display")

    def pull_until_tripped(self, ask: dict) -> None:
        """Pull steadily; the step ends when the table reports the trip (then the next
        question is asked). Far past the limit with nothing tripped, stop pulling harder
        and say done, as the instruction asks."""
        self.connect()
        started = time.monotonic()
        self.patient.pull(PULL_MAX_N, PULL_N_S)
        while time.monotonic() < self.deadline:
            if ask["ask"] in {s.get("ask") for s in _events(self.record(), "operator-step")}:
                return  # the table reported the trip: the step is closed
            st = self.ctrl.status()
            if st.force_n > GIVE_UP_N and not st.overforce_tripped:
                pulled = min(PULL_MAX_N, PULL_N_S * (time.monotonic() - started) * self.k)
                self.patient.pull(pulled)  # hold it there: pull no harder
                self.answer(ask, "done")
                return
            if not self.run.running:
                return
            time.sleep(0.02)
        self.fail("the pull step never ended")

    def let_go(self, ask: dict) -> None:
        self.connect()
        self.patient.pull(0.0, LET_GO_N_S)
        bound = time.monotonic() + (PULL_MAX_N / LET_GO_N_S) / self.k + 5.0
        while time.monotonic() < bound and self.ctrl.status().force_n > SPEC.residual_force_n:
            time.sleep(0.02)
        self.answer(ask, "done")

    def act_as_operator(self) -> None:
        """Answer every question of the run until it ends."""
        while self.run.running:
            if time.monotonic() > self.deadline:
                self.fail(f"rig run did not end within {RUN_TIMEOUT_S} s")
            for ask in self.open_questions():
                assert ask["test"] == OP_TEST and ask["requirements"] == ["IL-OVERFORCE"], ask
                assert "page" in ask["channels"], ask
                if ask["step"] == "pull":
                    assert ask["prompt"] == "action" and f"{LIMIT_N:g} N" in ask["instruction"], ask
                    self.pull_until_tripped(ask)
                elif ask["step"] == "release":
                    self.let_go(ask)
                else:
                    assert ask["step"] == "ready" and ask["prompt"] == "done", ask
                    self.answer(ask)
            time.sleep(0.02)


@pytest.fixture
def rig_run(child_run):
    def start(*pytest_args: str, **kwargs) -> Run:
        return Run(child_run, *pytest_args, **kwargs)

    return start


PAGE = ("--operator-page", "--operator-overforce", "--operator-timeout", str(OPERATOR_TIMEOUT_S))


def _measurement(record: list[dict], test: str) -> dict:
    (m,) = [m for m in _events(record, "measurement") if m["test"] == test and m["requirement"] == "IL-OVERFORCE"]
    return m


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
@pytest.mark.parametrize("fault, verdict", [(None, "PASS"), ("late-overforce-trip", "FAIL")],
                         ids=["nominal", "late-overforce-trip"])
def test_overforce_trip_pulled_by_a_person_in_the_page(rig_run, fault, verdict):
    # with the defect, the operator-assisted test alone: after the emulated snag's FAIL the
    # emulated table may be left in its emergency release with the drive off (see the report)
    r = rig_run(*PAGE, fault=fault, keyword="pulled_by_operator" if fault else "overforce")
    r.act_as_operator()
    assert r.wait() == 1, r.output()[-4000:]  # the requirements not run leave the run INCONCLUSIVE at best
    record = r.record()

    m = _measurement(record, OP_TEST)
    assert m["name"] == "gauge crossing FORCE_LIMIT to the trip" and m["unit"] == "s" and m["upper"] == 0.1
    assert m["verdict"] == verdict, m
    c = m["conditions"]
    assert c["pulled_by"] == "operator" and c["operator"] == PERSON and c["limit_n"] == LIMIT_N
    assert c["trip_seen_by"] == "controller" and c["latched"] is True
    assert c["hold_n"] == pytest.approx(0.8 * LIMIT_N)
    assert PULL_N_S / 2 < c["pull_rate_n_s"] < PULL_N_S * 2, c  # the slope at the crossing: the person's pace
    assert c["paid_out_before_the_trip_m"] > 0.01, c  # the force loop gave way before the force rose
    assert m["preconditions"][0]["held"] is True and "cross_s" in m["annotations"] and "trip_s" in m["annotations"]
    names = [t["name"] for t in m["budget"]]
    assert names == ["trip seen between two status reads", "gauge sample period (crossing)", "gauge clock mapping × K",
                     "crossing instant: gauge force uncertainty ÷ slope at the crossing"]
    assert m["uncertainty"] > 0
    if fault:  # debounced 300 ms: the force is over the limit that long at a steady pull
        assert m["value"] > 0.25, m
    else:
        assert m["value"] < 0.05, m

    if not fault:  # the same analysis as the emulated snag, which ran first
        snag = _measurement(record, SNAG_TEST)
        assert snag["name"] == m["name"] and [t["name"] for t in snag["budget"]] == names
        assert set(snag["conditions"]) == {"limit_n", "pull_rate_n_s", "latched", "peak_n"}
        assert snag["verdict"] == "PASS"

    steps = [s for s in _events(record, "operator-step") if s["test"] == OP_TEST]
    assert [(s["step"], s["where"], s["answered"]) for s in steps] == [
        ("ready", "page", True), ("pull", "table", True), ("release", "page", True)]
    assert steps[0]["operator"] == steps[2]["operator"] == PERSON
    assert steps[0]["client"] == steps[2]["client"] == CLIENT
    assert steps[1]["answer"].startswith("tripped (OVERFORCE_TRIPPED")
    assert all(s["requirements"] == ["IL-OVERFORCE"] for s in steps)
    assert not _events(record, "operator-answer-refused")

    (end,) = [e for e in _events(record, "test-end") if e["test"] == OP_TEST]
    assert end["outcome"] == ("failed" if fault else "passed"), end
    if fault:
        assert end["judged"] is True and "IL-OVERFORCE gauge crossing FORCE_LIMIT to the trip" in end["longrepr"]


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_without_an_operator_it_is_skipped_with_the_reason(rig_run):
    """No page offered and stdin not a terminal: nobody to ask, skipped before the table
    is touched; IL-OVERFORCE stands on the emulated snag alone."""
    r = rig_run("--operator-overforce")
    assert r.wait() == 1
    out = r.output()
    assert "needs a person at the bench: " in out and "no panel page offered" in out, out[-4000:]
    assert "1 passed, 1 skipped" in out, out[-4000:]
    record = r.record()
    assert not _events(record, "operator-ask") and not _events(record, "operator-step")
    assert [m["test"] for m in _events(record, "measurement")] == [SNAG_TEST]
    (end,) = [e for e in _events(record, "test-end") if e["test"] == OP_TEST]
    assert end["outcome"] == "skipped" and "needs a person at the bench" in end["longrepr"]


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_on_the_emulator_the_patient_simulator_pulls_unless_asked(rig_run):
    """A page is there, but the emulated table can pull itself: without --operator-overforce
    nobody is asked to."""
    r = rig_run("--operator-page", "--operator-timeout", str(OPERATOR_TIMEOUT_S))
    assert r.wait() == 1
    out = r.output()
    assert "the emulated table's patient simulator pulls instead: test_overforce_trip" in out, out[-4000:]
    record = r.record()
    assert not _events(record, "operator-ask")
    assert [m["test"] for m in _events(record, "measurement")] == [SNAG_TEST]
