"""Suite time limits from the plan (verification/budget.py, fixtures/plugin.SuiteTimeLimits) and the
run profile's plumbing: every suite test has an estimator, a suite item's pytest-timeout
limit is its plan ÷ K plus the margins (never the unit tests' 120 s), an explicit
--timeout still wins, a missing estimator is one collection error, and the profile
reaches the record, the terminal and the report."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fixtures.plan_collect import collect_plan
from verification import budget
from verification.spec import SPECS_DIR, Session, load_spec

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
SUITES = REPO / "suites"
LUMBAR_RIG = REPO / "rigs" / "emulated-lumbar.yaml"
UNIT_TEST_LIMIT_S = 120.0  # pyproject.toml's timeout, for the unit tests only


def suite_test_functions() -> list[tuple[str, str]]:
    """(file, function) of every test function the suites define, read from their source
    (independent of any specification's state)."""
    found = []
    for path in sorted(SUITES.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(path.name, node.name) for node in tree.body
                  if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
    return found


def test_every_suite_test_function_has_an_estimator():
    functions = suite_test_functions()
    assert len(functions) >= 10
    missing = [f"{file}::{name}" for file, name in functions if name not in budget.known_tests()]
    assert not missing, f"no estimator in verification/budget.py for {missing}"


@pytest.mark.parametrize("name", ["lumbar", "cervical"])
def test_collection_of_the_suites_finds_every_estimator(name):
    """pytest's own collection of suites/ with the plugin (what `rig run` and `rig spec
    duration` do): every collected item gets a plan, nothing is missing."""
    rows = collect_plan(name, "quick")
    assert len(rows) >= 15
    assert {r.test for r in rows} <= set(budget.known_tests())
    assert all(r.table_s >= 0 for r in rows)
    er = [r for r in rows if r.test == "test_emergency_release" and r.table_s > 0]
    assert len(er) == len(load_spec(name).plan.emergency.triggers)


def test_emergency_estimate_follows_the_plan():
    """Trials × (ramp to the force, the phase's wait, the release): more trials, slower set-up
    ramps or a longer watchdog period take longer; the watchdog trigger at least a period a trial."""
    spec = load_spec("lumbar")
    base = budget.estimate(spec, "test_emergency_release", {"trigger": "estop_coil"}, "full")
    wd = budget.estimate(spec, "test_emergency_release", {"trigger": "watchdog"}, "full")
    em = spec.plan.emergency
    assert base > em.trials * budget.release_s(spec)
    assert wd >= em.trials * (spec.plan.watchdog_s + budget.release_s(spec))
    assert wd > base
    # the quick profile runs quick_trials per trigger, whole cycles of the combinations and a part
    quick = budget.estimate(spec, "test_emergency_release", {"trigger": "estop_coil"}, "quick")
    assert em.quick_trials < em.trials and quick < base
    combos = len(em.phases) * len(em.forces_n)  # trials cycle through them: whole cycles double exactly

    def with_trials(n):
        return spec.model_copy(update={"plan": spec.plan.model_copy(
            update={"emergency": em.model_copy(update={"trials": n})})})
    one = budget.estimate(with_trials(combos), "test_emergency_release", {"trigger": "estop_coil"}, "full")
    assert budget.estimate(with_trials(2 * combos), "test_emergency_release", {"trigger": "estop_coil"}, "full") \
        == pytest.approx(2 * one)
    slower = spec.model_copy(update={"plan": spec.plan.model_copy(
        update={"emergency": em.model_copy(update={"setup_ramp_n_s": em.setup_ramp_n_s / 2})})})
    assert budget.estimate(slower, "test_emergency_release", {"trigger": "estop_coil"}, "full") > base
    assert budget.estimate(spec, "test_emergency_release", {"trigger": "not-a-trigger"}) == 0.0  # skipped


def test_intermittent_estimate_is_the_treatment_plus_its_release():
    spec = load_spec("lumbar")
    im = spec.plan.intermittent
    assert budget.estimate(spec, "test_intermittent_treatment", {}) == pytest.approx(
        im.treatment_s + im.hold_force_n / spec.max_ramp_rate_n_s + 0.5)
    long = {"treatment": Session(treatment_s=1800, profile="full")}
    assert budget.estimate(spec, "test_intermittent_treatment", long, "full") > 1800
    assert budget.estimate(spec, "test_intermittent_treatment", long, "quick") == 0.0  # skipped in quick
    high = {"treatment": Session(treatment_s=60, hold_force_n=600, rest_force_n=300)}
    assert budget.estimate(spec, "test_intermittent_treatment", high) == pytest.approx(60 + 600 / spec.max_ramp_rate_n_s + 0.5)


def test_full_profile_plans_longer_when_the_plan_has_full_sessions():
    """What `rig spec duration --profile full` adds: the full profile's sessions (if the plan has any)."""
    spec = load_spec("lumbar")
    sessions = list(getattr(spec.plan, "sessions", None) or [])
    rows = {p: {r.nodeid: r.table_s for r in collect_plan("lumbar", p, "intermittent")} for p in ("quick", "full")}
    assert rows["quick"].keys() == rows["full"].keys()  # a full session is collected in quick too, and skipped
    extra = sum(s.treatment_s for s in sessions if s.profile == "full")
    assert sum(rows["full"].values()) - sum(rows["quick"].values()) >= extra


def test_time_limit_is_the_plan_over_k_plus_the_margins():
    assert budget.time_limit_s(600.0, 1.0) == pytest.approx(
        600.0 * (1 + budget.MARGIN_FRACTION) + budget.MARGIN_WALL_S)
    assert budget.time_limit_s(600.0, 10.0) < budget.time_limit_s(600.0, 1.0)
    assert budget.time_limit_s(0.0, 1.0) == budget.FLOOR_WALL_S
    assert budget.time_limit_s(600.0, 1.0, first=True) == pytest.approx(
        budget.time_limit_s(600.0, 1.0) + budget.OPEN_RIG_WALL_S)
    with pytest.raises(ValueError):
        budget.time_limit_s(1.0, 0.0)
    with pytest.raises(budget.MissingEstimate, match="verification/budget.py"):
        budget.estimate(load_spec("lumbar"), "test_nobody_planned", {})


class Markers:
    """Collect-only plugin: each suite item's timeout marker (None: no marker)."""

    def __init__(self) -> None:
        self.limits: dict[str, float | None] = {}

    def pytest_collection_finish(self, session):
        for item in session.items:
            mark = item.get_closest_marker("timeout")
            self.limits[item.nodeid.split("::", 1)[-1]] = mark.args[0] if mark else None


def rig_at(tmp_path: Path, k: float) -> Path:
    data = yaml.safe_load(LUMBAR_RIG.read_text(encoding="utf-8"))
    data["time_scale"] = k
    path = tmp_path / f"emulated-lumbar-k{k:g}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def collect_limits(tmp_path: Path, *args: str) -> dict[str, float | None]:
    markers = Markers()
    code = pytest.main([str(SUITES), "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:labgrid",
                        f"--run-dir={tmp_path / 'runs'}", *args], plugins=[markers])
    assert code == 0
    assert not (tmp_path / "runs").exists()  # collection never opens the rig
    return markers.limits


def test_suite_items_get_their_plan_over_k_not_the_unit_test_limit(tmp_path):
    spec = load_spec("lumbar")
    limits = collect_limits(tmp_path, f"--rig={rig_at(tmp_path, 1.0)}")
    table = budget.estimate(spec, "test_emergency_release", {"trigger": "watchdog"})
    watchdog = limits["test_emergency_release[watchdog]"]
    assert watchdog == pytest.approx(budget.time_limit_s(table, 1.0))
    assert watchdog != UNIT_TEST_LIMIT_S and watchdog > UNIT_TEST_LIMIT_S  # a real bench's trials take longer
    first = next(iter(limits))
    assert limits[first] >= budget.FLOOR_WALL_S + budget.OPEN_RIG_WALL_S  # it opens the rig too
    assert all(v is not None and v >= budget.FLOOR_WALL_S and v != UNIT_TEST_LIMIT_S for v in limits.values())
    # the emulator's K = 10: the same plan, a tenth of the wall time
    fast = collect_limits(tmp_path, f"--rig={rig_at(tmp_path, 10.0)}")
    assert fast["test_emergency_release[watchdog]"] == pytest.approx(budget.time_limit_s(table, 10.0))
    assert fast["test_emergency_release[watchdog]"] < watchdog


def test_explicit_timeout_on_the_command_line_wins(tmp_path):
    limits = collect_limits(tmp_path, f"--rig={rig_at(tmp_path, 1.0)}", "--timeout=7")
    assert limits["test_emergency_release[watchdog]"] is None  # pytest-timeout then applies the 7 s
    assert limits["test_ramp[slow]"] is None


def test_a_suite_test_without_estimator_is_one_collection_error(pytester, monkeypatch):
    """A throw-away file standing in for suites/ (the plugin's SUITES_DIR pointed at it)."""
    import fixtures.plugin as plugin

    data = yaml.safe_load((SPECS_DIR / "lumbar.yaml").read_text(encoding="utf-8"))
    data["requirements"] = [r for r in data["requirements"] if r["id"] == "FA-STATIC"]
    (pytester.path / "small.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    pytester.makepyfile(test_unplanned="""
        import pytest

        @pytest.mark.requirement("FA-STATIC")
        def test_unplanned(bench):
            raise AssertionError("must not run: collection stops")
    """)
    monkeypatch.setattr(plugin, "SUITES_DIR", pytester.path.resolve())
    runs = pytester.path / "runs"
    result = pytester.runpytest_inprocess(f"--spec={pytester.path / 'small.yaml'}", f"--rig={LUMBAR_RIG}",
                                          f"--run-dir={runs}", "-p", "no:cacheprovider", "-p", "no:labgrid")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.errlines + result.outlines if line.startswith("ERROR:")]
    assert len(lines) == 1, result.errlines
    assert "test_unplanned.py::test_unplanned: no table-time estimator for test_unplanned in verification/budget.py" in lines[0]
    assert not runs.exists()


def test_profile_of_defaults_to_quick(pytester):
    pytester.makepyfile(test_profile="""
        from fixtures.plugin import profile_of

        def test_default(request, profile):
            assert profile == profile_of(request.config)
            print("PROFILE=" + profile)
    """)
    quick = pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", "-p", "no:labgrid")
    assert quick.ret == 0 and "PROFILE=quick" in quick.stdout.str()
    full = pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", "-p", "no:labgrid", "--profile=full")
    assert full.ret == 0 and "PROFILE=full" in full.stdout.str()
    bad = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:labgrid", "--profile=long")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rig_run_records_and_shows_the_profile(tmp_path):
    """One short suite test through `rig run --profile full`: run-start carries the profile
    (the rest of its line as before), test-start its time limit, the terminal and the
    report name the profile."""
    from reports.record import read_record, run_dirs
    from reports.render import render_report

    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "rigcli", "run", "--run-dir", str(runs), "--profile", "full",
                           "--no-report", "--no-history", "-k", "test_force_limit_locked_while_enabled"],
                          cwd=REPO, capture_output=True, text=True, timeout=280, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    run_dir = next(run_dirs(runs))
    events = read_record(run_dir)
    start = next(e for e in events if e["event"] == "run-start")
    assert start["profile"] == "full", out[-2000:]
    assert {"rig", "specification", "table", "gauge", "operator", "software", "argv"} <= set(start)
    test_start = next(e for e in events if e["event"] == "test-start")
    assert test_start["time_limit_s"] >= budget.FLOOR_WALL_S and test_start["time_limit_s"] != UNIT_TEST_LIMIT_S
    assert "traction-rig profile: full" in out
    assert "profile full" in out  # the verdict table's title
    html = next(Path(p) for p in render_report(run_dir, pdf=False) if str(p).endswith(".html")).read_text("utf-8")
    assert 'id="profile"><b>full</b>' in html
    json.dumps(start)  # still one JSON line's worth


def test_rig_spec_duration_prints_each_test_and_the_totals(tmp_path):
    spec = load_spec("lumbar")
    proc = subprocess.run([sys.executable, "-m", "rigcli", "spec", "duration", "lumbar", "--time-scale", "10"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    table = budget.estimate(spec, "test_emergency_release", {"trigger": "watchdog"})
    row = next(line for line in proc.stdout.splitlines() if "test_emergency_release[watchdog]" in line)
    assert f"{table:.1f}" in row and f"{budget.time_limit_s(table, 10.0):g}" in row
    total = sum(r.table_s for r in collect_plan("lumbar", "quick") if budget.runs_on(r, bench=False))
    assert f"{total:.0f} s of table time" in proc.stdout and "at K = 10" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "rigcli", "spec", "duration", str(tmp_path / "none.yaml")],
                         cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "none.yaml" in bad.stderr
