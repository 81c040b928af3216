"""The coverage map (verification/coverage.py) is complete, follows the plan, and is honest
against a real run: every value it claims for a run's profile appears in a measurement of
that requirement in the record of `rig run` against the emulated table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rigcli import coverage_cmd
from verification import coverage
from verification.spec import SPECS_DIR, Specification, load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("lumbar", "cervical")


def spec_with(name: str, **plan) -> Specification:
    """A copy of a built-in specification with some plan fields replaced."""
    data = yaml.safe_load((SPECS_DIR / f"{name}.yaml").read_text())
    data["plan"].update(plan)
    return Specification(**data)


# ---------------------------------------------------------------- (a) complete

@pytest.mark.parametrize("name", SPECS)
def test_every_requirement_is_mapped_and_every_one_point_dimension_is_reasoned_or_flagged(name):
    spec = load_spec(name)
    cov = coverage.coverage(spec)
    assert [rid for rid, rows in cov.items() if rows is None] == []
    for rid, rows in cov.items():
        assert rows, f"{rid}: no dimension"
        for row in rows:
            for profile, values in row.values.items():
                assert values, f"{rid} · {row.dimension.name}: nothing sampled in the {profile} profile"
            if row.one_point:
                # a one-point dimension says why that is enough, or says what it lets pass (a GAP)
                assert row.dimension.enough or row.dimension.gap, f"{rid} · {row.dimension.name}"
    flagged = {(rid, r.dimension.name) for rid, rows in cov.items() for r in rows if r.flagged}
    assert {line.split(" · ")[0].split(":")[0] for line in coverage.gaps(spec)} == {rid for rid, _ in flagged}


def test_a_requirement_the_map_does_not_know_is_a_gap():
    data = yaml.safe_load((SPECS_DIR / "lumbar.yaml").read_text())
    data["requirements"].append({"id": "XX-NEW", "title": "new", "source": "(J)", "quantity": "q", "upper": 1})
    spec = Specification(**data)
    assert coverage.coverage(spec)["XX-NEW"] is None
    assert any(g.startswith("XX-NEW: not in the coverage map") for g in coverage.gaps(spec))
    assert "#### XX-NEW" in coverage.render_markdown([spec], list(coverage.PROFILES))


def test_every_suite_check_the_map_names_exists():
    """The map never claims a test or a check the suites do not hold (read from their source)."""
    import importlib

    for e in coverage.MAP:
        for test in e.tests:
            path, _, fn = test.partition("::")
            mod = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            assert hasattr(mod, fn.split("[")[0]), test
    for item in coverage.CONTRACT:
        for tried in item.tried:
            assert tried.missing() is None, f"{item.id}: {tried.test}: {tried.missing()}"


def test_a_check_renamed_in_the_suite_is_no_longer_counted_as_tried():
    real = next(i for i in coverage.CONTRACT if i.id == "RESET-FORCE")
    renamed = coverage.ContractItem("X", "refusal", "x", (coverage.Tried(real.tried[0].test, "a name no suite uses",
                                                                          "IL-RESET"),))
    assert real.status == "tried"
    assert renamed.status == "NOT TRIED" and "has no check named" in renamed.tried[0].missing()


def test_every_contract_refusal_and_latch_is_listed():
    """Each "Refused" line, each LAST_REJECT code and each latch of the TCM-1 contract has
    an item; the ones no suite tries are named in the generated map."""
    ids = {i.id for i in coverage.CONTRACT}
    assert {f"REJECT-{n}" for n in range(1, 7)} <= ids
    assert {"ENABLE-READY", "START-ENABLED", "START-SWITCH", "START-LIMIT", "RESET-FORCE", "RESET-PRESSED",
            "LIMIT-ENABLED", "RESIDUAL-RO", "LATCH-ESTOP", "LATCH-OVERFORCE", "LATCH-WATCHDOG", "RELATCH-ESTOP",
            "RELATCH-MAINS"} <= ids
    text = coverage.render_markdown([load_spec("lumbar")], ["quick"])
    untried = [i.id for i in coverage.CONTRACT if i.status == "NOT TRIED"]
    assert f"Not tried by any suite: {', '.join(untried) if untried else 'none'}." in text


# ---------------------------------------------------------------- (b) follows the plan

def values(spec: Specification, rid: str, dimension: str, profile: str = "quick") -> list:
    return next(r for r in coverage.rows(spec, rid, [profile]) if r.dimension.name == dimension).values[profile]


def test_values_follow_the_plan():
    base = load_spec("lumbar")
    assert values(base, "FA-STATIC", "setting") == sorted(float(v) for v in base.plan.setpoints_n)
    moved = spec_with("lumbar", setpoints_n=[20, 40, 80, 160, 320, 480, 640, 860])
    falling = [float(v) for v in getattr(base.plan, "falling_setpoints_n", [])]  # approached from above, too
    assert values(moved, "FA-STATIC", "setting") == sorted({20, 40, 80, 160, 320, 480, 640, 860, *falling})
    assert values(moved, "FA-CELL", "setting") == values(moved, "FA-STATIC", "setting")
    assert (860.0, "rising") in values(moved, "FA-STATIC", "setting × approach")

    rates = spec_with("lumbar", ramp_rates_n_s=[5, 20, 40])
    assert values(rates, "RA-RATE", "ramp rate") == [5.0, 40.0]

    em = base.plan.emergency.model_dump()
    quick = "quick_trials" if "quick_trials" in em else "trials"  # 1.3: the quick profile's own count
    fewer = spec_with("lumbar", emergency={**em, quick: 3})
    # the trials take the phase × force combinations in turn: three trials reach three cells
    assert len(values(fewer, "ER-HALF", "trigger × phase × force")) == 3 * len(values(fewer, "ER-HALF", "trigger"))
    assert values(fewer, "ER-HALF", "phase") == ["ramp_up", "hold"]
    assert values(fewer, "ER-HALF", "trials per trigger") == [3]
    if quick == "quick_trials":  # the full profile runs the specification's trials: every cell
        assert values(fewer, "ER-HALF", "phase", "full") == ["ramp_up", "hold", "ramp_to_rest", "rest"]
        assert values(fewer, "ER-HALF", "trials per trigger", "full") == [em["trials"]]

    wd = spec_with("lumbar", watchdog_s=5.0)
    assert values(wd, "WD-TIME", "configured period") == [5.0]
    limit = spec_with("lumbar", overforce_limit_n=350)
    assert values(limit, "IL-OVERFORCE", "FORCE_LIMIT") == [350.0]
    assert values(limit, "IL-OVERFORCE", "pull rate") == [7000.0]


def test_values_of_the_contract_the_plan_leaves_out_are_listed():
    base = load_spec("lumbar")
    fewer = spec_with("lumbar", emergency={**base.plan.emergency.model_dump(),
                                           "triggers": ["estop_coil", "watchdog"]})
    assert values(fewer, "ER-HALF", "trigger") == ["estop_coil", "watchdog"]
    lines = coverage.unsampled(fewer)
    assert "ER-HALF · trigger: not sampled: estop_button, switch_pressed, switch_unplugged, mains_cut, overforce" in lines
    assert "ER-HALF · trigger: not sampled: overforce" in coverage.unsampled(base)
    assert "ER-HALF · trigger: not sampled: overforce" in coverage.render_markdown([base], ["quick"])


@pytest.mark.skipif(not hasattr(load_spec("lumbar").plan, "sessions_for"), reason="plan.sessions not in this spec.py")
def test_sessions_and_ramp_cases_follow_the_plan_per_profile():
    base = load_spec("lumbar")
    sessions = [{"treatment_s": 45}, {"treatment_s": 90, "hold_force_n": 700, "rest_force_n": 350},
                {"treatment_s": 1200, "profile": "full"}]
    spec = spec_with("lumbar", sessions=sessions)
    assert values(spec, "TT-TIME", "treatment length", "quick") == [45.0, 90.0]
    assert values(spec, "TT-TIME", "treatment length", "full") == [45.0, 90.0, 1200.0]
    im = base.plan.intermittent
    assert values(spec, "IM-LEVELS", "set level") == sorted({im.rest_force_n, im.hold_force_n, 350.0, 700.0})
    one = spec_with("lumbar", sessions=[{"treatment_s": 45}])
    row = next(r for r in coverage.rows(one, "TT-TIME") if r.dimension.name == "treatment length")
    assert row.flagged  # one session length: the long-session timer drift is a GAP again
    assert any("TT-TIME · treatment length" in g for g in coverage.gaps(one))

    high = spec_with("lumbar", ramp_high_force_n=700)
    assert values(high, "RA-RATE", "ramp force") == [float(base.plan.ramp_force_n), 700.0]
    low = spec_with("lumbar", ramp_high_force_n=None)
    assert values(low, "RA-RATE", "ramp force") == [float(base.plan.ramp_force_n)]
    assert next(r for r in coverage.rows(low, "RA-RATE") if r.dimension.name == "ramp force").flagged

    falling = spec_with("lumbar", falling_setpoints_n=[])
    assert values(falling, "FA-STATIC", "approach") == ["rising"]
    assert next(r for r in coverage.rows(falling, "FA-STATIC") if r.dimension.name == "approach").flagged


def test_cli_writes_the_map_for_both_specifications(tmp_path):
    out = tmp_path / "coverage.md"
    from rigcli.main import main

    assert main(["spec", "coverage", "lumbar", "cervical", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## lumbar" in text and "## cervical" in text and "### Summary" in text
    assert text == coverage.render_markdown([load_spec("lumbar"), load_spec("cervical")], list(coverage.PROFILES))


def test_cli_bad_run_directory_is_one_line(tmp_path, capsys):
    from rigcli.main import main

    assert main(["spec", "coverage", "lumbar", "--run", str(tmp_path / "nowhere")]) == 2
    assert main(["spec", "coverage", "lumbar", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such run directory" in err[0] and "no record.jsonl in it" in err[1]


#: the specifications docs/coverage.md maps: the traction ones and flexion-distraction
DOC_SPECS = (*SPECS, "flexion-distraction")


def test_docs_coverage_md_is_the_generated_map():
    """docs/coverage.md is regenerated whenever the map, the plan or the suites change."""
    text = coverage.render_markdown([load_spec(n) for n in DOC_SPECS], list(coverage.PROFILES))
    assert (ROOT / "docs" / "coverage.md").read_text() == text, \
        f"docs/coverage.md is stale: rig spec coverage {' '.join(DOC_SPECS)} --profile both --out docs/coverage.md"


def test_the_traction_contract_section_is_tcm1s_alone():
    """Each protocol's contract once, headed with it; the traction specifications share TCM-1's."""
    text = coverage.render_markdown([load_spec(n) for n in SPECS], ["quick"])
    assert text.count("## The contract's refusals and latches") == 1
    assert "## The contract's refusals and latches (TCM-1)" in text and "FDC-1" not in text
    assert coverage.contract_of(load_spec("lumbar")).items == coverage.CONTRACT


# ---------------------------------------------------------------- (c) honest against a real run

#: requirements whose every claimed value a complete nominal run must have measured
CHECKED = ("FA-STATIC", "FA-CELL", "RA-RATE", "RA-OVERSHOOT", "RA-SETTLE", "IM-TIMING", "IM-LEVELS", "TT-TIME",
           "WD-TIME", "IL-START")


@pytest.fixture
def recorded_run(nominal_lumbar_run) -> Path:
    """The session's complete `rig run` of the suites against the nominal emulated lumbar
    table (tests/main_run.py), with 8 emergency trials per trigger: every phase × force
    cell once."""
    return nominal_lumbar_run.run_dir


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_the_map_holds_against_a_recorded_run(recorded_run):
    start, measurements, started = coverage_cmd.recorded_run(recorded_run)
    check = coverage.check_run(load_spec("lumbar"), recorded_run, start, measurements, started)
    assert check.profile == "quick"
    by = {}
    for line in check.lines:
        by.setdefault(line.requirement, []).append(line)
    for rid in CHECKED:
        statuses = {line.dimension: line.status for line in by[rid]}
        assert "MISSING" not in statuses.values(), check.text()
        assert "ok" in statuses.values(), f"{rid}: nothing checked\n{check.text()}"
    assert check.ok, check.text()
    # a requirement the run did not measure at all (as in a -k run) is "not run", not a failure:
    # the same record seen without IL-RESET's measurements and tests
    reset_tests = {n.split("::")[-1].split("[")[0] for n in coverage.entry("IL-RESET").node_ids(load_spec("lumbar"),
                                                                                                "quick")}
    kept = {t for t in started if t.split("::")[-1].split("[")[0] not in reset_tests}
    assert reset_tests and kept < started
    without = coverage.check_run(load_spec("lumbar"), recorded_run, start,
                                 [m for m in measurements if m.get("requirement") != "IL-RESET"], kept)
    assert [line.status for line in without.lines if line.requirement == "IL-RESET"] == ["not run"], without.text()
    assert without.ok, without.text()
    # the command prints the same check and exits 0
    proc = subprocess.run([sys.executable, "-m", "rigcli", "spec", "coverage", "lumbar", "--run", str(recorded_run)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "OK: every value the map claims" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_a_value_the_run_did_not_measure_is_reported(recorded_run, tmp_path):
    """The check can fail: the same record without the 800 N step and the falling
    approaches (as if the staircase had stopped early) misses values the map claims."""
    doctored = tmp_path / "run"
    shutil.copytree(recorded_run, doctored)
    lines = (doctored / "record.jsonl").read_text().splitlines()
    kept = []
    for raw in lines:
        e = json.loads(raw)
        c = e.get("conditions") or {}
        if e.get("event") == "measurement" and e.get("requirement") == "FA-STATIC" and (
                c.get("setting_n") == 800 or c.get("approach") == "falling"):
            continue
        kept.append(raw)
    (doctored / "record.jsonl").write_text("\n".join(kept) + "\n")
    check = coverage.check_run(load_spec("lumbar"), doctored, *coverage_cmd.recorded_run(doctored))
    missing = {(line.requirement, line.dimension) for line in check.lines if line.status == "MISSING"}
    assert ("FA-STATIC", "setting") in missing and ("FA-STATIC", "approach") in missing
    assert ("FA-CELL", "setting") not in missing
    assert not check.ok and "FAILED" in check.text()
    from rigcli.main import main

    assert main(["spec", "coverage", "lumbar", "--run", str(doctored)]) == 1
