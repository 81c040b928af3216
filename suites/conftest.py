"""The safety suites: every force is measured with the reference gauge."""

import pytest


def pytest_addoption(parser):
    # an initial conftest whenever the suites are collected (`rig run` passes suites/,
    # `pytest suites/...`), so pytest calls this hook for it; the plugin's own options
    # are in fixtures/plugin.py
    parser.getgroup("traction-rig").addoption(
        "--operator-overforce", action="store_true",
        help="IL-OVERFORCE: also run the operator-assisted over-force trip (a person pulls the harness) on a rig "
             "that has a patient simulator; a real bench runs it anyway (it needs --destructive there)")


def pytest_collection_modifyitems(config, items):
    from fixtures.operator import bound_operator_tests

    bound_operator_tests(config, items)


def pytest_generate_tests(metafunc):
    """test_intermittent_treatment runs once per session of the plan (plan.sessions), the
    flexion-distraction kinematics once per treatment (plan.treatments); a session or
    treatment of the full profile only is collected in the quick profile too, and skipped
    with the reason, so a report always says what the profile left out."""
    if "fd_treatment" in metafunc.fixturenames:
        _fd_treatments(metafunc)
    if "treatment" not in metafunc.fixturenames:
        return
    from fixtures.plugin import profile_of, runs_here, spec_of

    if not runs_here(metafunc.definition, metafunc.config):
        return  # a suite of another protocol: deselected before it could run

    plan = spec_of(metafunc.config).plan
    profile = profile_of(metafunc.config)
    params = []
    for s in plan.sessions_for("full"):
        marks = []
        if s not in plan.sessions_for(profile):
            marks.append(pytest.mark.skip(reason=f"a {s.treatment_s} s session of clinical length runs in the full "
                                                 f"profile only (this run: --profile {profile})"))
        params.append(pytest.param(s, id=s.test_id, marks=marks))
    metafunc.parametrize("treatment", params)


def _fd_treatments(metafunc):
    from fixtures.plugin import profile_of, runs_here, spec_of

    if not runs_here(metafunc.definition, metafunc.config):
        return  # a suite of another protocol: deselected before it could run
    plan = spec_of(metafunc.config).plan
    profile = profile_of(metafunc.config)
    chosen = plan.treatments_for(profile)
    params = []
    for t in plan.treatments_for("full"):
        marks = []
        if t not in chosen:
            marks.append(pytest.mark.skip(reason=f"a treatment of the full profile only (this run: --profile {profile})"))
        params.append(pytest.param(t, id=t.test_id, marks=marks))
    metafunc.parametrize("fd_treatment", params)
