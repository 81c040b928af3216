"""The flexion-distraction coverage map (verification/fd_coverage.py) is complete, follows
the plan, names only checks the FD suites hold, and is held to account against a run's
record: a synthetic record of a complete quick run (the conditions and names the FD suites
record, written without a rig) passes the check, and the same record with a claimed value
taken out fails it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reports.record import RunRecord
from rigcli import coverage_cmd
from verification import coverage, fd_coverage
from verification.fd_interlock import LIMIT_REGISTERS
from verification.fd_plan import plan_of
from verification.flexion_spec import MOTIONS, FlexionSpecification
from verification.spec import SPECS_DIR, load_spec

ROOT = Path(__file__).resolve().parent.parent
FD = "flexion-distraction"
REQUIREMENTS = ("FD-DEPTH", "FD-NEUTRAL", "FD-SPEED", "FD-TIMING", "FD-CYCLES", "FD-ENCODER", "DX-STATIC", "IL-DEPTH",
                "IL-LIMIT-LOCK", "IL-START", "IL-RESET", "IL-TRAVEL", "IL-OBSTRUCT", "ES-TIME", "ES-TRAVEL", "ES-HOLD",
                "ES-RELEASE", "ES-LATCH")


def fd_with(**plan) -> FlexionSpecification:
    """A copy of the built-in FD specification with some plan fields replaced (a dict: merged)."""
    data = yaml.safe_load((SPECS_DIR / f"{FD}.yaml").read_text())
    for key, value in plan.items():
        data["plan"][key] = {**data["plan"][key], **value} if isinstance(value, dict) else value
    return FlexionSpecification(**data)


def values(spec, rid: str, dimension: str, profile: str = "quick") -> list:
    return next(r for r in coverage.rows(spec, rid, [profile]) if r.dimension.name == dimension).values[profile]


def row(spec, rid: str, dimension: str):
    return next(r for r in coverage.rows(spec, rid) if r.dimension.name == dimension)


# ---------------------------------------------------------------- complete

def test_every_fd_requirement_is_mapped():
    spec = load_spec(FD)
    assert set(REQUIREMENTS) == set(spec.ids)
    cov = coverage.coverage(spec)
    assert [rid for rid, rows in cov.items() if rows is None] == []
    assert {e.requirement for e in fd_coverage.FD_MAP} == set(REQUIREMENTS)
    for rid, rows in cov.items():
        assert rows, f"{rid}: no dimension"
        for r in rows:
            for profile, vals in r.values.items():
                assert vals, f"{rid} · {r.dimension.name}: nothing sampled in the {profile} profile"


def test_every_one_point_dimension_has_a_reason_or_is_a_listed_gap():
    spec = load_spec(FD)
    listed = coverage.gaps(spec)
    for rid, rows in coverage.coverage(spec).items():
        for r in rows:
            if not r.one_point:
                continue
            if r.dimension.enough:
                assert not r.flagged
                continue
            assert r.flagged and r.dimension.gap, f"{rid} · {r.dimension.name}: one point, no reason, no gap text"
            assert any(g.startswith(f"{rid} · {r.dimension.name}: one point") for g in listed), (rid, r.dimension.name)
    # the real gaps are shown, not reasoned away
    assert any(g.startswith("IL-RESET · distraction at the refusal") for g in listed)
    assert any(g.startswith("IL-TRAVEL · how the limit is crossed") for g in listed)


def test_an_fd_spec_is_no_longer_reported_as_unmapped():
    text = coverage.render_markdown([load_spec(FD)], list(coverage.PROFILES))
    assert "no suite covers a flexion-distraction specification yet" not in text
    assert "#### FD-DEPTH" in text and "Measured by `suites/test_fd_kinematics.py::test_treatment_kinematics`" in text
    data = yaml.safe_load((SPECS_DIR / f"{FD}.yaml").read_text())
    data["requirements"].append({"id": "FD-NEW", "title": "new", "source": "(J)", "quantity": "q", "upper": 1})
    extra = FlexionSpecification(**data)
    assert coverage.coverage(extra)["FD-NEW"] is None
    assert "FD-NEW: not in the coverage map (verification/fd_coverage.py FD_MAP)" in coverage.gaps(extra)


def test_coverage_imports_no_kind_module_at_import():
    """The kinds register on the first look-up: importing coverage alone loads none (no import-time cycle)."""
    code = ("import sys, verification.coverage as c; assert 'verification.fd_coverage' not in sys.modules; "
            "from verification.spec import load_spec; assert c.contract_of(load_spec('flexion-distraction')).protocol "
            "== 'FDC-1'; assert 'verification.fd_coverage' in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- follows the plan

def test_values_follow_the_plan():
    base = load_spec(FD)
    assert values(base, "FD-DEPTH", "speed") == sorted({float(t.speed_deg_s) for t in base.plan.treatments_for("quick")})
    assert values(base, "FD-DEPTH", "motion (side)") == list(MOTIONS)
    assert coverage.entry("FD-DEPTH", base).node_ids(base, "full") == [
        f"suites/test_fd_kinematics.py::test_treatment_kinematics[{t.test_id}]" for t in base.plan.treatments]

    flexion_only = [t.model_dump() for t in base.plan.treatments if t.mode == "flexion"]
    spec = fd_with(treatments=flexion_only)
    assert values(spec, "FD-DEPTH", "mode") == ["flexion"]
    assert values(spec, "FD-DEPTH", "motion (side)") == ["flexion"]
    assert row(spec, "FD-DEPTH", "mode").flagged and row(spec, "FD-DEPTH", "lateral depth").flagged
    assert "FD-DEPTH · motion (side): not sampled: lateral_left, lateral_right" in coverage.unsampled(spec)
    assert any(g.startswith("FD-DEPTH · mode: one point") for g in coverage.gaps(spec))

    fast = fd_with(treatments=[{**t.model_dump(), "speed_deg_s": 10.0} for t in base.plan.treatments])
    assert values(fast, "FD-SPEED", "speed") == [10.0]
    assert values(fast, "FD-SPEED", "ends of SPEED's range") == []
    assert "FD-SPEED · ends of SPEED's range: not sampled: slowest (0.1 °/s), rated" in coverage.unsampled(fast)

    # the emergency trials take the motion × phase cells in turn: two trials reach flexion only
    two = fd_with(emergency={"quick_trials": 2})
    assert values(two, "ES-TIME", "motion") == ["flexion"]
    assert values(two, "ES-TIME", "moving phase") == ["moving_out", "moving_back"]
    assert values(two, "ES-TIME", "trials per trigger") == [2]
    assert values(two, "ES-TIME", "trials per trigger", "full") == [base.plan.emergency.trials]
    assert "ES-TIME · motion: not sampled: lateral_left, lateral_right" in coverage.unsampled(two)
    assert values(fd_with(emergency={"forces_n": [40, 120, 200]}), "ES-RELEASE", "distraction at the trigger") \
        == [40.0, 120.0, 200.0]
    fewer = fd_with(emergency={"triggers": ["estop_coil", "watchdog"]})
    assert values(fewer, "ES-LATCH", "restart tried") == ["START"]
    assert coverage.entry("ES-TIME", fewer).node_ids(fewer, "quick") == [
        "suites/test_fd_emergency.py::test_fd_emergency_stop[estop_coil]",
        "suites/test_fd_emergency.py::test_fd_emergency_stop[watchdog]"]

    assert values(fd_with(interlocks={"above_limit_deg": [0.3]}), "IL-DEPTH", "amount above the limit") == [0.3]
    one_side = fd_with(interlocks={"overtravel_motions": ["lateral_right"]})
    assert values(one_side, "IL-TRAVEL", "motion (side)") == ["lateral_right"]
    assert row(one_side, "IL-TRAVEL", "motion (side)").flagged
    slow = fd_with(obstruction={"speeds_deg_s": [7]})
    assert values(slow, "IL-OBSTRUCT", "speed") == [7.0] and row(slow, "IL-OBSTRUCT", "speed").flagged
    assert values(fd_with(obstruction={"quick_trials": 2}), "IL-OBSTRUCT", "trials per case") == [2]
    # a treatment whose count comes long before its time is ended by the count
    counted = fd_with(treatments=[{"mode": "flexion", "depth_deg": 2, "speed_deg_s": 10, "cycles": 1,
                                   "treatment_s": 600}])
    assert values(counted, "FD-CYCLES", "ended by") == ["count"]
    assert values(counted, "FD-CYCLES", "ends set") == ["both"]
    assert "FD-CYCLES · ended by: not sampled: time" in coverage.unsampled(counted)


def test_the_refusal_conditions_are_the_suites_own():
    from suites.test_fd_interlocks import START_CASES

    spec = load_spec(FD)
    assert values(spec, "IL-START", "refusal condition") == list(START_CASES)
    assert coverage.entry("IL-START", spec).node_ids(spec, "quick") == [
        f"suites/test_fd_interlocks.py::test_fd_start_refused[{c}]" for c in START_CASES]
    assert values(spec, "IL-LIMIT-LOCK", "limit register") == [r.name for r in LIMIT_REGISTERS]


# ---------------------------------------------------------------- the FDC-1 contract

def test_every_fdc1_item_is_tried_by_a_check_the_suites_hold_or_says_why_not():
    contract = coverage.contract_of(load_spec(FD))
    assert contract.protocol == "FDC-1" and contract.file.endswith("flexion-distraction-modbus.md")
    ids = {i.id for i in contract.items}
    assert {f"REJECT-{n}" for n in range(1, 7)} <= ids
    assert {"ENABLE-READY", "START-ENABLED", "START-SWITCH", "START-ESTOP", "START-WATCHDOG", "START-OVERTRAVEL",
            "START-OBSTRUCTION", "START-LIMIT", "START-ORDER", "RESET-FORCE", "RESET-PRESSED", "RELATCH-ESTOP",
            "DEPTH-RANGE", "LIMIT-ENABLED", "RESIDUAL-RO", "LATCH-OVERTRAVEL", "LATCH-OBSTRUCTION"} <= ids
    for item in contract.items:
        for tried in item.tried:
            assert tried.missing() is None, f"{item.id}: {tried.test}: {tried.missing()}"
        if not item.tried:
            assert item.note, f"{item.id}: NOT TRIED without saying why"
    untried = [i.id for i in contract.items if i.status == "NOT TRIED"]
    text = coverage.render_markdown([load_spec(FD)], ["quick"])
    assert f"Not tried by any suite: {', '.join(untried)}." in text


def test_a_check_renamed_or_gone_from_the_library_is_not_tried():
    latch = next(i for i in coverage.contract_of(load_spec(FD)).items if i.id == "ES-RESTART")
    assert latch.status == "tried" and all(t.built_by == "verification.fd_emergency" for t in latch.tried)
    gone = coverage.Tried(latch.tried[0].test, "a name no module builds", "ES-LATCH",
                          built_by="verification.fd_emergency")
    assert "builds no check named" in gone.missing()
    elsewhere = coverage.Tried(latch.tried[0].test, "restart refused until RESET", "ES-LATCH",
                               built_by="verification.fd_interlock")
    assert "does not import verification.fd_interlock" in elsewhere.missing()
    assert "is not parametrized with" in coverage.Tried(
        "suites/test_fd_interlocks.py::test_fd_start_refused[no such case]", "START refused (no such case)",
        "IL-START", "START refused ({condition})").missing()


def test_each_specification_shows_its_own_protocols_contract():
    lumbar, fd = load_spec("lumbar"), load_spec(FD)
    both = coverage.render_markdown([lumbar, load_spec("cervical"), fd], ["quick"])
    assert both.count("## The contract's refusals and latches (TCM-1)") == 1
    assert both.count("## The contract's refusals and latches (FDC-1)") == 1
    assert "latch of shared/protocols/flexion-distraction-modbus.md (FDC-1)" in both
    alone = coverage.render_markdown([fd], ["quick"])
    assert "(TCM-1)" not in alone.split("## The contract's")[-1] and "traction-controller-modbus.md" not in alone


# ---------------------------------------------------------------- against a run's record

def complete_quick_record(spec) -> tuple[list[dict], set[str]]:
    """The measurements (name, requirement, quantity, conditions) and test node ids a
    complete quick run of the FD suites records, built from the plan the way the suites
    build them (names and condition keys as in suites/test_fd_*.py and verification/fd_*.py)."""
    from suites.test_fd_interlocks import START_CASES

    ms: list[dict] = []
    started: set[str] = set()

    def m(test, rid, name, quantity=None, **conditions):
        started.add(test)
        ms.append({"test": test, "requirement": rid, "name": name, "quantity": quantity, "value": 0.0,
                   "conditions": conditions})

    for t in spec.plan.treatments_for("quick"):
        test = f"suites/test_fd_kinematics.py::test_treatment_kinematics[{t.test_id}]"
        cond = {"treatment": t.test_id, "mode": t.mode, "depth_deg": t.depth_deg, "speed_deg_s": t.speed_deg_s,
                "pause_s": t.pause_s, "rest_s": t.rest_s, "cycles": t.cycles, "treatment_s": t.treatment_s,
                "distraction_n": t.distraction_n, "profile": t.profile}
        sides = (1,) if t.mode == "flexion" else (1, -1)
        for k, side in enumerate(sides, start=1):
            m(test, "FD-DEPTH", f"end angle of move {k}", set_deg=side * t.depth_deg, **cond)
            m(test, "FD-ENCODER", f"encoder vs inclinometer at {side * t.depth_deg:+.1f}°",
              inclinometer_deg=side * t.depth_deg, **cond)
        m(test, "FD-ENCODER", "encoder vs inclinometer at +0.0°", inclinometer_deg=0.0, **cond)
        m(test, "FD-NEUTRAL", "angle at neutral, rest 1", measured_deg=0.0, **cond)
        for k, direction in enumerate((1, -1), start=1):
            m(test, "FD-SPEED", f"cruise speed error of move {k}", direction=direction, **cond)
            if t.distraction_n:
                m(test, "DX-STATIC", f"distraction during move {k}", direction=direction, **cond)
        m(test, "FD-TIMING", "pause 1 duration error", phase="pause", set_s=t.pause_s, **cond)
        m(test, "FD-TIMING", "rest 2 duration error", phase="rest", set_s=t.rest_s, **cond)
        if plan_of(t, spec.plan.distraction_rate_n_s).ended_by == "count":
            m(test, "FD-CYCLES", "cycles counted in the angle trace", counted=t.cycles, set=t.cycles, **cond)
        else:
            m(test, "FD-CYCLES", "treatment time error", quantity="time", set_s=t.treatment_s, **cond)

    em = spec.plan.emergency
    for trigger in em.triggers:
        test = f"suites/test_fd_emergency.py::test_fd_emergency_stop[{trigger}]"
        for i, (motion, phase, force) in enumerate(em.trial_plan("quick")):
            depth = em.flexion_depth_deg if motion == "flexion" else em.lateral_depth_deg
            cond = {"trigger": trigger, "motion": motion, "phase": phase, "force_n": force,
                    "speed_deg_s": spec.emergency_speed_deg_s, "depth_deg": depth, "trial": i + 1,
                    "hold_window_s": em.hold_window_s}
            name = f"{trigger} trial {i + 1} ({motion} {phase}, {force:g} N)"
            for rid, quantity in (("ES-TIME", None), ("ES-TRAVEL", None), ("ES-HOLD", None), ("ES-HOLD", "return"),
                                  ("ES-RELEASE", None), ("ES-RELEASE", "rise")):
                m(test, rid, name, quantity, **cond)
            m(test, "ES-LATCH", f"{name}: restart refused until RESET", restart_refused=True,
              enable_refused=True if trigger == "mains_cut" else None, **cond)

    il, il_test = spec.plan.interlocks, "suites/test_fd_interlocks.py::"
    for reg, mode, limit in (("FLEXION_DEPTH", "flexion", il.angle_limit_deg),
                             ("LATERAL_DEPTH", "lateral", il.lateral_limit_deg)):
        for above in il.above_limit_deg:
            m(il_test + "test_fd_depth_above_limit_refused", "IL-DEPTH",
              f"{reg} {above:g}° above the limit refused with 03 (LAST_REJECT 1)", limit_deg=limit,
              written_deg=limit + above)
        m(il_test + "test_fd_depth_above_limit_refused", "IL-DEPTH",
          f"START refused with the {mode} depth above a lowered limit (LAST_REJECT 1)", mode=mode,
          limit_deg=il.overtravel_limit_deg)
    for reg in LIMIT_REGISTERS:
        for state in ("enabled, idle", "treatment running"):
            for direction in ("lower", "higher"):
                m(il_test + "test_fd_limits_locked_while_enabled", "IL-LIMIT-LOCK",
                  f"{reg.name} write refused with 04, LAST_REJECT 4 ({state}, {direction})", register=reg.name,
                  state=state, direction=direction)
    m(il_test + "test_fd_limits_locked_while_enabled", "IL-LIMIT-LOCK",
      "RESIDUAL_FORCE write refused with 04 (read-only, LAST_REJECT 6)")
    for condition, expected in START_CASES.items():
        m(f"{il_test}test_fd_start_refused[{condition}]", "IL-START",
          f"START refused ({condition}), LAST_REJECT {int(expected)} ({expected.name})", condition=condition)
    for name in ("RESET refused with force present (LAST_REJECT 5)",
                 "RESET refused with the patient switch pressed (LAST_REJECT 3)",
                 "a RESET with the e-stop button held latches again at once",
                 "RESET moves nothing (the section stays where it stopped)"):
        m(il_test + "test_fd_reset", "IL-RESET", name)
    for motion in il.overtravel_motions:
        m(f"{il_test}test_fd_overtravel_trip[{motion}]", "IL-TRAVEL",
          f"over-travel trip after ENABLE beyond the limit ({motion})", motion=motion, limit_deg=il.overtravel_limit_deg)
    ob = spec.plan.obstruction
    for speed, force in ob.cases():
        for n in range(ob.trials_for("quick")):
            for quantity in (None, "backoff", "release"):
                m(il_test + "test_fd_obstruction", "IL-OBSTRUCT", f"obstruction at {speed:g} °/s, {force:g} N "
                  f"(trial {n + 1})", quantity, speed_deg_s=speed, distraction_n=force, trial=n + 1)
    return ms, started


def write_record(run_dir: Path, spec, ms: list[dict], started: set[str]) -> Path:
    """The record lines a run writes (reports.record.RunRecord), read back by the command's reader."""
    rec = RunRecord(run_dir)
    rec.event("run-start", specification=spec.model_dump(mode="json"), profile="quick", rig={"name": "bench-fd-1"})
    for test in sorted(started):
        rec.event("test-start", test=test, requirements=sorted({x["requirement"] for x in ms if x["test"] == test}))
    for x in ms:
        rec.event("measurement", **x)
    rec.event("run-end", complete=True, exitstatus=0)
    rec.close()
    return run_dir


def test_a_complete_record_passes_and_a_missing_value_is_reported(tmp_path):
    spec = load_spec(FD)
    ms, started = complete_quick_record(spec)
    run = write_record(tmp_path / "run", spec, ms, started)
    check = coverage.check_run(spec, run, *coverage_cmd.recorded_run(run))
    assert check.profile == "quick"
    assert check.ok, check.text()
    statuses = {(line.requirement, line.dimension): line.status for line in check.lines}
    assert {s for s in statuses.values()} <= {"ok", "not recorded"}, check.text()
    for rid in REQUIREMENTS:
        assert statuses.get((rid, "(all)")) is None and any(
            s == "ok" for (r, _), s in statuses.items() if r == rid), f"{rid}\n{check.text()}"
    shown = {item.id for item, seen in check.contract if seen}
    assert {"START-ORDER", "ES-RESTART", "RESET-FORCE", "LIMIT-ENABLED", "DEPTH-RANGE", "LATCH-OVERTRAVEL"} <= shown
    from rigcli.main import main

    assert main(["spec", "coverage", FD, "--run", str(run)]) == 0

    # the same record without the right side of lateral flexion, the moves back of the
    # emergency trials and the treatment ended by time
    kept = [x for x in ms if not (
        (x["requirement"] == "FD-DEPTH" and x["conditions"].get("set_deg", 0) < 0)
        or (x["requirement"] == "ES-TIME" and x["conditions"].get("phase") == "moving_back")
        or (x["requirement"] == "FD-CYCLES" and x["quantity"] == "time"))]
    doctored = write_record(tmp_path / "doctored", spec, kept, started)
    check = coverage.check_run(spec, doctored, *coverage_cmd.recorded_run(doctored))
    missing = {(line.requirement, line.dimension) for line in check.lines if line.status == "MISSING"}
    assert {("FD-DEPTH", "motion (side)"), ("ES-TIME", "moving phase"), ("ES-TIME", "motion × phase"),
            ("FD-CYCLES", "ended by"), ("FD-CYCLES", "TREATMENT_TIME")} <= missing, check.text()
    assert ("ES-TRAVEL", "moving phase") not in missing and ("FD-DEPTH", "mode") not in missing
    assert not check.ok and "FAILED" in check.text()
    assert main(["spec", "coverage", FD, "--run", str(doctored)]) == 1


def test_a_run_that_left_requirements_out_is_not_run_not_missing(tmp_path):
    """A -k run of the emergency suite only: the kinematics and interlock requirements are 'not run'."""
    spec = load_spec(FD)
    ms, started = complete_quick_record(spec)
    es = [x for x in ms if x["test"].startswith("suites/test_fd_emergency.py")]
    run = write_record(tmp_path / "run", spec, es, {x["test"] for x in es})
    check = coverage.check_run(spec, run, *coverage_cmd.recorded_run(run))
    by = {line.requirement: line.status for line in check.lines if line.dimension == "(all)"}
    assert by["FD-DEPTH"] == "not run" and by["IL-START"] == "not run"
    assert check.ok, check.text()


@pytest.mark.parametrize("name", ["lumbar", FD])
def test_a_record_of_an_fd_run_is_checked_against_the_fd_map(name, tmp_path):
    """tests/synthetic_fd_run's partial record: checked against the FD map, never the traction one."""
    from tests.synthetic_fd_run import build_fd_run

    run = build_fd_run(tmp_path / "run")
    check = coverage.check_run(load_spec(name), run, *coverage_cmd.recorded_run(run))
    # the record names the FD specification: the map is evaluated for what ran
    assert check.spec_name == name
    assert {line.requirement for line in check.lines} == set(REQUIREMENTS)
