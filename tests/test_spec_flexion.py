"""The flexion-distraction specification: it loads as its kind's model through the
registry, every requirement the issue names is there, traced and bounded in the one unit
vocabulary, its plan samples where the defects hide, bad input is one line, and what
iterates every specification (coverage map, `rig spec`) takes it although no suite covers
it yet."""

from __future__ import annotations

import copy
import math

import pytest
import yaml

from drivers.errors import ConfigError
from drivers.kinds import table_kinds
from verification import coverage
from verification.flexion_spec import MOTIONS, MOVING_PHASES, FlexionSpecification
from verification.spec import (EMERGENCY_TRIGGERS, SPECS_DIR, UNITS, Specification, load_spec, model_for,
                               specification_models, specification_of)

NAME = "flexion-distraction"
IDS = ["FD-DEPTH", "FD-NEUTRAL", "FD-SPEED", "FD-TIMING", "FD-CYCLES", "FD-ENCODER", "DX-STATIC", "IL-DEPTH",
       "IL-LIMIT-LOCK", "IL-START", "IL-RESET", "IL-TRAVEL", "IL-OBSTRUCT", "ES-TIME", "ES-TRAVEL", "ES-HOLD",
       "ES-RELEASE", "ES-LATCH"]


@pytest.fixture(scope="module")
def spec() -> FlexionSpecification:
    return load_spec(NAME)


def base_data() -> dict:
    return yaml.safe_load((SPECS_DIR / f"{NAME}.yaml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the registry

def test_every_table_kind_a_rig_can_drive_has_a_specification_model():
    assert set(specification_models()) == set(table_kinds())
    assert model_for("lumbar") is model_for("cervical") is Specification
    assert model_for(NAME) is FlexionSpecification


def test_the_kind_chooses_the_model(spec):
    assert type(spec) is FlexionSpecification and spec.kind == NAME
    assert type(load_spec("lumbar")) is Specification
    again = specification_of(spec.model_dump())  # as a run records it
    assert again == spec.model_copy(update={"source": None})


def test_a_kind_without_a_model_is_one_line(tmp_path):
    data = base_data()
    data["kind"] = "circumduction"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: kind: ")
    assert "'circumduction'" in msg and "flexion-distraction" in msg and "lumbar" in msg


def test_builtin_listing_names_every_specification():
    with pytest.raises(ConfigError, match="built-in: cervical, lumbar, flexion-distraction"):
        load_spec("no-such-table")


# ---------------------------------------------------------------- the requirements

def test_every_requirement_the_issue_names_is_there_once(spec):
    assert spec.ids == IDS


def test_requirements_are_traced_bounded_and_in_the_unit_vocabulary(spec):
    variables = {v: 10.0 for v in spec.formula_variables}
    for r in spec.requirements:
        assert r.title.strip() and r.source.strip() and r.quantity.strip(), r.id
        if r.decision_rule == "guard-banded":
            assert r.unit in UNITS, r.id
            for key in [None, *(q.key for q in r.also)]:
                low, high = r.limits(key, **variables)
                assert low is not None or high is not None, (r.id, key)
                assert all(x is None or math.isfinite(x) for x in (low, high)), (r.id, key)
        for q in r.also:
            assert q.unit in UNITS, f"{r.id}.{q.key}"
    angles = {r.id for r in spec.requirements if r.unit == "deg"} | {
        f"{r.id}.{q.key}" for r in spec.requirements for q in r.also if q.unit == "deg"}
    assert {"FD-DEPTH", "FD-NEUTRAL", "FD-ENCODER", "ES-TRAVEL", "ES-HOLD", "ES-HOLD.return",
            "IL-OBSTRUCT.backoff"} <= angles


@pytest.mark.parametrize("rid, key, variables, expected", [
    ("FD-DEPTH", None, {"depth": 5.0}, (None, 0.5)),     # the 0.5° floor
    ("FD-DEPTH", None, {"depth": 25.0}, (None, 1.25)),   # 5 % of the rated depth
    ("FD-SPEED", None, {"speed": 20.0}, (None, 2.0)),
    ("FD-SPEED", "above-rated", {"rated_speed": 20.0}, (None, 0.4)),
    ("FD-TIMING", None, {"setting": 4.0}, (None, 0.2)),
    ("FD-TIMING", None, {"setting": 60.0}, (None, 0.6)),
    ("FD-CYCLES", None, {}, (None, 0.0)),
    ("FD-CYCLES", "time", {}, (None, 30.0)),
    ("DX-STATIC", None, {"setting": 30.0}, (None, 5.0)),
    ("DX-STATIC", None, {"setting": 250.0}, (None, 12.5)),
    ("IL-TRAVEL", None, {}, (None, 0.1)),
    ("IL-OBSTRUCT", None, {}, (None, 130.0)),
    ("IL-OBSTRUCT", "backoff", {"backoff": 2.0}, (1.5, None)),
    ("IL-OBSTRUCT", "release", {}, (None, 1.0)),
    ("ES-TIME", None, {}, (None, 0.2)),
    ("ES-TRAVEL", None, {}, (None, 1.5)),
    ("ES-HOLD", None, {}, (None, 0.2)),
    ("ES-HOLD", "return", {}, (None, 0.2)),
    ("ES-RELEASE", None, {}, (None, 3.0)),
    ("ES-RELEASE", "rise", {"force": 250.0}, (None, 5.0)),
    ("ES-RELEASE", "rise", {"force": 400.0}, (None, 8.0)),
])
def test_limits_are_the_domain_defaults(spec, rid, key, variables, expected):
    got = spec.requirement(rid).limits(key, **variables)
    for value, want in zip(got, expected):
        assert value == (None if want is None else pytest.approx(want))


def test_the_ratings_are_the_domain_defaults(spec):
    assert (spec.rated_flexion_deg, spec.rated_lateral_deg, spec.rated_speed_deg_s) == (25, 15, 20)
    assert (spec.rated_force_n, spec.residual_force_n) == (300, 10)
    assert spec.emergency_speed_deg_s == spec.rated_speed_deg_s


# ---------------------------------------------------------------- the plan samples where defects hide

def test_treatments_sample_modes_speeds_depths_dwells_ends_and_distraction(spec):
    for profile in ("quick", "full"):
        ts = spec.plan.treatments_for(profile)
        assert {t.mode for t in ts} == {"flexion", "lateral"}
        assert {m for t in ts for m in t.motions} == set(MOTIONS)
        speeds = {t.speed_deg_s for t in ts}
        assert 0.1 in speeds and spec.rated_speed_deg_s in speeds  # the contract's slowest SPEED and the rated
        for mode in ("flexion", "lateral"):
            depths = {t.depth_deg for t in ts if t.mode == mode}
            assert spec.rated_depth(mode) in depths and min(depths) <= 0.25 * spec.rated_depth(mode), mode
        dwells = {t.pause_s for t in ts} | {t.rest_s for t in ts}
        assert 0.0 in dwells and any(d >= 4 for d in dwells)  # none, and a clinical hold (Cox: 4 s)
        assert any(t.cycles and not t.treatment_s for t in ts)  # ended by the count
        assert any(t.treatment_s and not t.cycles for t in ts)  # ended by the time, mid-cycle
        forces = {t.distraction_n for t in ts if t.distraction_n}
        assert min(forces) <= 0.2 * spec.rated_force_n and max(forces) >= 0.8 * spec.rated_force_n
    full = spec.plan.treatments_for("full")
    assert len(full) > len(spec.plan.treatments_for("quick"))
    assert any(t.treatment_s >= 180 for t in full)  # a clinical session (3-5 min)
    ids = [t.test_id for t in full]
    assert len(set(ids)) == len(ids)


def test_emergency_trials_cover_every_trigger_motion_and_phase_at_the_rated_speed(spec):
    em = spec.plan.emergency
    assert list(em.triggers) == list(EMERGENCY_TRIGGERS)
    cells = {(m, p) for m in MOTIONS for p in MOVING_PHASES}
    for profile in ("quick", "full"):
        plan = em.trial_plan(profile)
        assert len(plan) == em.trials_for(profile)
        assert {(m, p) for m, p, _ in plan} == cells
        for m in MOTIONS:  # each motion, and each phase, at more than one force already in one pass
            assert len({f for mm, _, f in plan if mm == m}) == len(em.forces_n)
        for p in MOVING_PHASES:
            assert len({f for _, pp, f in plan if pp == p}) == len(em.forces_n)
    assert {(m, p, f) for m, p, f in em.trial_plan("full")} == {(*c, f) for c in cells for f in em.forces_n}
    assert em.trials_for("full") >= 20 and em.trials_for("quick") < em.trials_for("full")


def test_fewer_trials_still_reach_every_cell_before_repeating_one(spec):
    em = spec.plan.emergency.model_copy(update={"quick_trials": 7})
    plan = em.trial_plan("quick")
    assert len({(m, p) for m, p, _ in plan[:6]}) == 6 and plan[6][:2] == plan[0][:2] and plan[6][2] != plan[0][2]


def test_interlock_and_obstruction_cases(spec):
    il, ob = spec.plan.interlocks, spec.plan.obstruction
    assert il.angle_limit_deg < spec.rated_flexion_deg and il.lateral_limit_deg < spec.rated_lateral_deg
    assert min(il.above_limit_deg) == 0.1  # one register step: the corner
    assert set(il.overtravel_motions) == set(MOTIONS)
    assert il.overtravel_limit_deg < il.overtravel_stand_deg
    assert spec.rated_speed_deg_s in ob.speeds_deg_s and min(ob.speeds_deg_s) < spec.rated_speed_deg_s
    assert ob.trials_for("quick") <= ob.trials_for("full")
    assert len(ob.cases()) == len(ob.speeds_deg_s) * len(ob.distraction_n)


# ---------------------------------------------------------------- bad input: one line

@pytest.fixture
def bad(tmp_path):
    def make(mutate) -> str:
        data = copy.deepcopy(base_data())
        mutate(data)
        path = tmp_path / "bad-fd.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_spec(path)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{path}: "), message
        return message
    return make


def _req(data, rid):
    return next(r for r in data["requirements"] if r["id"] == rid)


def test_a_depth_beyond_the_rated_travel(bad):
    msg = bad(lambda d: d["plan"]["treatments"][3].update(depth_deg=16))
    assert "plan.treatments[3].depth_deg" in msg and "rated" in msg


def test_a_speed_above_the_rated(bad):
    msg = bad(lambda d: d["plan"]["obstruction"].update(speeds_deg_s=[5, 25]))
    assert "plan.obstruction.speeds_deg_s[1]" in msg and "rated_speed_deg_s" in msg


def test_a_value_off_the_register_step(bad):
    msg = bad(lambda d: d["plan"]["treatments"][0].update(depth_deg=3.05))
    assert "plan.treatments.0.depth_deg" in msg and "0.1°" in msg


def test_a_treatment_without_an_end(bad):
    msg = bad(lambda d: d["plan"]["treatments"][0].update(cycles=0))
    assert "plan.treatments.0" in msg and "needs an end" in msg


def test_an_unknown_motion(bad):
    msg = bad(lambda d: d["plan"]["emergency"].update(motions=["flexion", "circumduction"]))
    assert "plan.emergency.motions.1" in msg


def test_a_trial_force_not_above_the_residual(bad):
    msg = bad(lambda d: d["plan"]["emergency"].update(forces_n=[5, 250]))
    assert "plan.emergency.forces_n[0]" in msg and "residual" in msg


def test_a_traction_variable_in_a_flexion_formula(bad):
    msg = bad(lambda d: _req(d, "FD-SPEED").update(upper="0.1 * rate"))
    assert "FD-SPEED" in msg and "rate" in msg and "flexion-distraction" in msg


def test_an_angle_in_another_unit(bad):
    msg = bad(lambda d: _req(d, "ES-TRAVEL").update(unit="rad"))
    assert "requirements.14.unit (ES-TRAVEL)" in msg and "deg" in msg


def test_a_traction_plan_key_in_a_flexion_plan(bad):
    msg = bad(lambda d: d["plan"].update(setpoints_n=[10, 20]))
    assert "plan.setpoints_n" in msg


# ---------------------------------------------------------------- what iterates every specification

def test_the_coverage_map_is_the_flexion_distraction_one(spec):
    """Its own kind's entries (tests/test_fd_coverage_map.py holds them to account), never
    traction's entries of the same id (IL-START, IL-RESET)."""
    cov = coverage.coverage(spec)
    assert list(cov) == IDS and all(rows for rows in cov.values())
    fd_start = {r.dimension.name for r in cov["IL-START"]}
    lumbar_start = {r.dimension.name for r in coverage.coverage(load_spec("lumbar"))["IL-START"]}
    assert fd_start != lumbar_start
    text = coverage.render_markdown([load_spec("lumbar"), spec], ["quick", "full"])
    assert "## flexion-distraction (specification 1.0)" in text and "#### ES-HOLD" in text
    assert "(TCM-1)" in text and "(FDC-1)" in text


def test_the_coverage_check_of_a_run_says_not_run(spec, tmp_path):
    check = coverage.check_run(spec, tmp_path, {"profile": "quick", "specification": spec.model_dump(mode="json")},
                               [], set())
    assert check.ok and {line.status for line in check.lines} == {"not run"} and not check.notes


def test_rig_spec_show_and_check(capsys):
    from rigcli.main import main

    assert main(["spec", "check", "lumbar", "cervical", NAME]) == 0
    out = capsys.readouterr().out
    assert f"{NAME} 1.0 ({NAME}): 18 requirements" in out and out.count("OK") == 3
    assert main(["spec", "show", NAME, "--plan"]) == 0
    out = capsys.readouterr().out
    for rid in IDS:
        assert rid in out
    assert "max(0.5, 0.05 * depth) deg" in out and "treatments:" in out and "lateral_right" in out
    assert main(["spec", "coverage", NAME, "--profile", "quick"]) == 0
    out = capsys.readouterr().out
    assert "#### FD-DEPTH" in out and "(FDC-1)" in out


def test_rig_spec_check_bad_file_is_one_line(tmp_path, capsys):
    from rigcli.main import main

    data = base_data()
    data["rated_speed_deg_s"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["spec", "check", str(path)]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "rated_speed_deg_s" in err and str(path) in err


def test_a_run_record_of_it_summarises_and_renders(tmp_path, monkeypatch):
    """The verdict table and the report list its requirements (each NOT RUN: the run's
    measurements are another kind's), rather than break on a kind they do not know."""
    import tests.synthetic_run as synthetic
    from reports.render import render_report
    from reports.verdicts import summarise

    fd = load_spec(NAME)
    monkeypatch.setattr(synthetic, "load_spec", lambda name: fd)
    run = synthetic.build_run(tmp_path / "run")
    summary = summarise(run)
    assert [r.id for r in summary.results] == IDS and {r.verdict for r in summary.results} == {"NOT RUN"}
    written = render_report(run, max_plots=1, pdf=False)
    html = next(p for p in written if p.suffix == ".html").read_text(encoding="utf-8")
    for rid in IDS:
        assert rid in html


def test_the_quantities_state_the_numbers_the_plan_gives_the_suites(spec):
    """ES-TIME's rest speed and ES-HOLD's window are written for a reviewer in the
    quantity and for the suites in the plan: the two must say the same."""
    em = spec.plan.emergency
    assert f"{em.at_rest_deg_s:g} deg/s" in spec.requirement("ES-TIME").quantity
    assert f"{em.hold_window_s:g} s" in spec.requirement("ES-HOLD").quantity
