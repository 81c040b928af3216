"""`rig faults matrix`'s summary per requirement: defects mapped, caught, and the margin of
each catch, read from the run's record the way the verdict table reads it. A catch by a
hair is one plan change away from a miss, so the margin must be the deciding measurement's
own distance beyond its own limit, not a number made up from the verdict."""

from __future__ import annotations

import pytest

from reports.verdicts import summarise, verdict_rows
from rigcli.faults import margin, margin_text, requirement_summary, summary_lines
from tests.synthetic_run import build_run


def line(value, lower=None, upper=None, unit="N", rule="guard-banded", u=0.5):
    return {"value": value, "lower": lower, "upper": upper, "unit": unit, "decision_rule": rule, "uncertainty": u}


def test_margin_beyond_an_upper_limit_in_unit_and_fraction_of_the_tolerance():
    mg = margin(line(12.0, upper=10.0))  # FA-STATIC at 30 N, 12 N off against max(5 %, 10 N)
    assert mg["beyond"] == pytest.approx(2.0) and mg["fraction"] == pytest.approx(0.2)
    assert mg["violated"] and mg["unit"] == "N" and mg["limit"] == 10.0
    assert margin_text(mg) == "+2 N (+20%)"


def test_margin_below_a_lower_limit():
    mg = margin(line(0.004, lower=0.05, unit="s"))  # ER-SNAP: a snap of 4 ms against ≥ 50 ms
    assert mg["beyond"] == pytest.approx(0.046) and mg["fraction"] == pytest.approx(0.92)


def test_margin_of_a_two_sided_limit_is_a_fraction_of_half_the_band():
    mg = margin(line(13.0, lower=-10.0, upper=10.0))
    assert mg["beyond"] == pytest.approx(3.0) and mg["fraction"] == pytest.approx(0.3)
    inside = margin(line(4.0, lower=-10.0, upper=10.0))
    assert inside["beyond"] == pytest.approx(-6.0) and not inside["violated"]


def test_margin_of_a_release_that_never_came_and_of_a_boolean():
    never = margin(line(None, upper=3.0, unit="s"))
    assert never["never"] and never["violated"] and never["beyond"] is None
    assert margin_text(never) == "never reached"
    refusal = margin(line(False, rule="boolean"))
    assert refusal["violated"] and refusal["beyond"] is None and margin_text(refusal) == "violated"
    assert margin(None) is None and margin_text(None) == "—"


def test_margin_read_from_a_run_record(tmp_path):
    """The margin of a real record's deciding measurement: the synthetic run's third release
    is slow (ER-HALF FAIL); the worst measurement is the one the verdict table shows."""
    run = build_run(tmp_path / "run", fail=True)
    rows = {r.id: r for r in verdict_rows(summarise(run).results)}
    worst = rows["ER-HALF"].tally.worst
    assert rows["ER-HALF"].tally.verdict == "FAIL"
    mg = margin(worst)
    assert mg["beyond"] == pytest.approx(worst["value"] - worst["upper"])
    assert mg["fraction"] == pytest.approx((worst["value"] - worst["upper"]) / worst["upper"])
    assert mg["beyond"] > 0 and mg["unit"] == "s"


def matrix_rows():
    return [
        {"fault": None, "verdicts": {"FA-STATIC": "PASS", "ER-NORISE": "PASS", "ER-NORISE.rise": "PASS"}},
        {"fault": "low-force-offset", "verdicts": {"FA-STATIC": "FAIL", "ER-NORISE": "PASS", "ER-NORISE.rise": "PASS"},
         "margins": {"FA-STATIC": margin(line(12.1, upper=10.0))}},
        {"fault": "offset-error", "verdicts": {"FA-STATIC": "PASS", "ER-NORISE": "PASS", "ER-NORISE.rise": "PASS"},
         "margins": {}},
        {"fault": "mains-cut-coast", "verdicts": {"FA-STATIC": "PASS", "ER-NORISE": "PASS", "ER-NORISE.rise": "FAIL"},
         "margins": {"ER-NORISE.rise": margin(line(31.0, upper=8.0))}},
        {"fault": "switch-ignored-in-hold",
         "verdicts": {"FA-STATIC": "PASS", "ER-NORISE": "FAIL", "ER-NORISE.rise": "INCONCLUSIVE"},
         "margins": {"ER-NORISE": margin(line(None, upper=0.05, unit="s"))}},
    ]


def test_requirement_summary_counts_mapped_and_caught_with_margins():
    summary = {s["requirement"]: s for s in requirement_summary(matrix_rows(), ["FA-STATIC", "ER-NORISE",
                                                                               "ER-NORISE.rise"])}
    fa = summary["FA-STATIC"]
    assert fa["mapped"] == ["low-force-offset", "offset-error"]  # the nominal row is no defect
    assert [c["fault"] for c in fa["caught"]] == ["low-force-offset"]
    assert fa["caught"][0]["margin"]["beyond"] == pytest.approx(2.1)
    assert fa["missed"] == [{"fault": "offset-error", "verdict": "PASS"}]
    # a quantity column counts a defect mapped to it or to its whole requirement
    rise = summary["ER-NORISE.rise"]
    assert rise["mapped"] == ["mains-cut-coast", "switch-ignored-in-hold"]
    assert [c["fault"] for c in rise["caught"]] == ["mains-cut-coast"]
    assert rise["missed"] == [{"fault": "switch-ignored-in-hold", "verdict": "INCONCLUSIVE"}]
    # ... while the requirement's own column does not count a defect mapped to one quantity
    assert summary["ER-NORISE"]["mapped"] == ["switch-ignored-in-hold"]


def test_summary_lines_name_each_catch_and_miss():
    lines = summary_lines(requirement_summary(matrix_rows(), ["FA-STATIC", "ER-NORISE", "ER-NORISE.rise", "TT-TIME"]))
    text = "\n".join(lines)
    assert "| FA-STATIC | 2 | 1 | `low-force-offset` +2.1 N (+21%) | `offset-error` (PASS) |" in text
    assert "| ER-NORISE | 1 | 1 | `switch-ignored-in-hold` never reached | — |" in text
    assert "TT-TIME" not in text  # no defect mapped to it in these rows


def test_a_full_profile_defect_runs_with_profile_full(tmp_path, monkeypatch):
    """Only the full profile's plan reaches a defect of profile full (a timer drifting in
    clinical-length sessions): its run must ask `rig run` for it; the others stay quick."""
    import subprocess

    import rigcli.faults as matrix

    commands = []

    def fake_run(cmd, **kwargs):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "no rig here\n")

    monkeypatch.setattr(matrix.subprocess, "run", fake_run)
    spec = tmp_path / "spec.yaml"
    for fault in ("timer-drift-long", "low-force-offset", None):
        res = matrix._run_one("x", fault, 1, spec, tmp_path)
        assert res["verdicts"] == {} and res["error"] == ["no rig here"]
    full, quick, nominal = commands
    assert full[full.index("--profile") + 1] == "full" and "--fault" in full
    assert "--profile" not in quick and "--profile" not in nominal
