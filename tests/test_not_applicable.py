"""Checks that could not be judged: a precondition that did not hold makes a measurement
N/A with its reason — never FAIL — and N/A decides no requirement's verdict, in the run
summary, the verdict table and the compliance report."""

from __future__ import annotations

import json
import math

from reports.record import RunRecord
from reports.rundir import value_text
from reports.render import build_context, render_html
from reports.verdicts import summarise
from verification.measurement import Measurement, Precondition, Verdict
from verification.spec import load_spec
from tests.synthetic_run import build_run

SPEC = load_spec("lumbar")
RESET = SPEC.requirement("IL-RESET")
SNAP = SPEC.requirement("ER-SNAP")


def test_a_precondition_that_did_not_hold_makes_the_check_not_applicable():
    gone = Precondition("force above the residual force through the RESET write (gauge)", False,
                        "gauge 0.4 N at the write, 0.2 N at its acknowledgement; residual 15 N")
    m = Measurement("RESET refused right after an emergency stop", RESET, False, preconditions=[gone])
    assert m.verdict is Verdict.NOT_APPLICABLE  # the value (accepted) would have been a FAIL
    assert m.not_applicable.startswith("force above the residual force") and "0.4 N" in m.not_applicable
    assert m.margin == math.inf and value_text(m.to_dict()) == "N/A"
    line = json.loads(json.dumps(m.to_dict()))
    assert line["verdict"] == "N/A" and line["not_applicable"] == m.not_applicable
    assert line["preconditions"] == [gone.to_dict()]


def test_preconditions_that_held_leave_the_verdict_to_the_value():
    held = Precondition("a release that reached 10 % of the force at the trigger", True, "lowest 0.3 N")
    fast = Measurement("snap", SNAP, 0.004, "s", 0.05, None, preconditions=[held])
    assert fast.verdict is Verdict.FAIL and fast.not_applicable == ""
    assert Measurement("snap", SNAP, None, "s", 0.05, None,
                       preconditions=[Precondition("a release", False, "none")]).to_dict()["value"] is None


def _record(run_dir, lines):
    rec = RunRecord(run_dir)
    rec.event("run-start", rig={"name": "r", "time_scale": 1.0}, specification=SPEC.model_dump(mode="json"),
              spec_file=str(SPEC.source), table={"kind": "lumbar", "serial": "S-1", "rated_force_n": 890.0}, gauge={},
              emulator=None,
              operator="x", software={}, argv=[])
    test = "suites/test_interlocks.py::test_reset_refused_with_force_present"
    rec.event("test-start", test=test, requirements=["IL-RESET"])
    for m in lines:
        rec.event("measurement", test=test, series=None, **m.to_dict())
    rec.event("test-end", test=test, when="call", outcome="passed", longrepr=None, duration_s=0.1, judged=False)
    rec.event("run-end", complete=True, exitstatus=0)
    return run_dir


def test_not_applicable_decides_nothing(tmp_path):
    gone = Precondition("force above the residual force through the RESET write (gauge)", False, "gauge 0.4 N")
    run = _record(tmp_path, [Measurement("RESET refused during a treatment (force present)", RESET, True),
                             Measurement("RESET refused right after an emergency stop", RESET, False,
                                         preconditions=[gone])])
    r = next(x for x in summarise(run).results if x.id == "IL-RESET")
    assert r.verdict == "PASS" and r.measurements == 2 and r.not_applicable == 1
    assert r.worst["name"] == "RESET refused during a treatment (force present)"
    assert r.not_applicable_reasons[0].startswith("force above the residual force")


def test_a_requirement_with_nothing_but_not_applicable_stays_not_run_and_says_why(tmp_path):
    run = build_run(tmp_path / "run")  # IL-RESET is not measured there
    gone = Precondition("the ESTOP latched", False, "ESTOP_LATCHED=False right after the ESTOP write")
    RunRecord(run).event("measurement", test="suites/test_interlocks.py::test_reset_refused_with_force_present",
                         series=None, **Measurement("e-stop latch kept", RESET, False, preconditions=[gone]).to_dict())
    summary = summarise(run)
    r = next(x for x in summary.results if x.id == "IL-RESET")
    assert r.verdict == "NOT RUN" and r.not_applicable == 1
    ctx = build_context(run, summary, {}, max_plots=0)
    reset = [(kind, text) for kind, text in ctx["deviations"] if "IL-RESET" in text]
    assert ("not run", "IL-RESET (RESET refused with force present): every check was not applicable (below).") in reset
    assert any(kind == "not applicable" and "the ESTOP latched" in text for kind, text in reset)
    html = render_html(ctx)
    assert "NOT RUN — every check of IL-RESET in this run was not applicable" in html


def test_a_fail_in_the_deviations_says_what_held_and_what_was_measured(tmp_path):
    run = build_run(tmp_path / "run", fail=True)
    rec = RunRecord(run)  # append a FAIL whose check states its preconditions
    held = Precondition("force above the residual force through the RESET write (gauge)", True,
                        "gauge 391 N at the write, 390 N at its acknowledgement")
    rec.event("measurement", test="suites/test_interlocks.py::test_reset_refused_with_force_present", series=None,
              **Measurement("RESET refused right after an emergency stop", RESET, False, preconditions=[held],
                            conditions={"force_n": 388.2, "reason": "None"}).to_dict())
    summary = summarise(run)
    text = next(t for k, t in build_context(run, summary, {}, max_plots=0)["deviations"] if t.startswith("IL-RESET"))
    assert "Preconditions held: force above the residual force" in text and "391 N" in text
    assert "Measured under: force_n = 388.2" in text


def test_a_test_that_failed_on_its_verdicts_did_complete(tmp_path):
    run = _record(tmp_path, [Measurement("RESET refused during a treatment (force present)", RESET, False)])
    rec = RunRecord(run)
    rec.event("test-end", test="suites/test_interlocks.py::test_reset_refused_with_force_present", when="call",
              outcome="failed", longrepr="measurements not PASS", duration_s=0.1, judged=True)
    rec.event("test-end", test="suites/test_ramps.py::test_ramp[slow]", when="call", outcome="failed",
              longrepr="BenchTimeout", duration_s=0.1, judged=False)
    summary = summarise(run)
    assert summary.errored_tests == ["suites/test_ramps.py::test_ramp[slow]"]
    assert summary.overall == "FAIL"


def test_the_trial_table_shows_each_trial_across(tmp_path):
    run = build_run(tmp_path / "run")
    ctx = build_context(run, summarise(run), {}, max_plots=0)
    table = ctx["trial_table"]
    assert [c["id"] for c in table["columns"]] == ["ER-NORISE", "ER-NORISE.rise", "ER-HALF", "ER-RESIDUAL", "ER-SNAP",
                                                   "ER-LATCH"][:len(table["columns"])]
    assert len(table["rows"]) == 3 and all(len(r["cells"]) >= 5 for r in table["rows"])
