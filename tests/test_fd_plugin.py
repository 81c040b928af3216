"""The plugin on a flexion-distraction table: suites chosen by protocol before the
coverage gate, the release confirmed by each protocol's own "released" rule (FDC-1: the
distraction at the residual AND the section braked), every reference instrument's
calibration refused when expired, the run-start record's inclinometer and obstacle
gauge, a rig whose table speaks another protocol than its specification, and the
treatment-time model the kinematics suite and its budget share. Nothing here opens a rig."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

import pytest
import yaml

from drivers.controller import ControllerStatus, TractionController
from drivers.fdc1 import FaultCode as FdFault
from drivers.fdc1 import Phase as FdPhase
from drivers.fdc1 import RejectReason
from drivers.flexion_controller import FlexionController, FlexionStatus
from drivers.tcm1 import FaultCode, Phase
from fixtures.plugin import calibration_refusal, reference_instruments
from reports.rundir import RunStart
from rigs.config import load_rig
from rigs.safe_state import release
from verification.budget import estimate
from verification.fd_plan import cycle_s, move_s, plan_of
from verification.spec import SPECS_DIR, load_spec

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
FD_RIG = REPO / "rigs" / "emulated-flexion-distraction.yaml"
LUMBAR_RIG = REPO / "rigs" / "emulated-lumbar.yaml"
INNER = ("-p", "no:cacheprovider", "-p", "no:labgrid")


# ---------------------------------------------------------------- suites by protocol
def small_fd_spec(directory: Path, ids: list[str]) -> Path:
    data = yaml.safe_load((SPECS_DIR / "flexion-distraction.yaml").read_text(encoding="utf-8"))
    data["name"] = "small-fd"
    data["requirements"] = [r for r in data["requirements"] if r["id"] in ids]
    path = directory / "small-fd.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


SUITE_FILES = {
    "test_traction": """
        import pytest

        pytestmark = [pytest.mark.protocol("TCM-1")]

        @pytest.mark.requirement("ER-RESIDUAL")
        def test_release(bench):
            raise AssertionError("must not run")
    """,
    "test_fd": """
        import pytest

        pytestmark = [pytest.mark.protocol("FDC-1")]

        @pytest.mark.requirement("FD-DEPTH")
        def test_depth(fd_bench):
            raise AssertionError("must not run")
    """,
}


def test_a_traction_suite_is_deselected_before_the_gate_judges_a_flexion_distraction_spec(pytester, tmp_path):
    """ER-RESIDUAL is no FDC-1 requirement: its suite, marked TCM-1, leaves before the gate
    (else the gate would refuse it as unknown) and the FD suite covers the spec."""
    pytester.makepyfile(**SUITE_FILES)
    spec = small_fd_spec(tmp_path, ["FD-DEPTH"])
    result = pytester.runpytest(f"--run-dir={tmp_path / 'runs'}", *INNER, "--strict-markers", f"--rig={FD_RIG}",
                                f"--spec={spec}", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.outlines + result.errlines
    out = "\n".join(result.outlines)
    assert "test_fd.py::test_depth" in out and "test_traction.py" not in out
    assert "1 deselected" in out
    assert not (tmp_path / "runs").exists()


def test_the_gate_still_names_a_flexion_distraction_requirement_no_fd_suite_covers(pytester, tmp_path):
    pytester.makepyfile(**SUITE_FILES)
    spec = small_fd_spec(tmp_path, ["FD-DEPTH", "FD-NEUTRAL"])
    result = pytester.runpytest(f"--run-dir={tmp_path / 'runs'}", *INNER, "--strict-markers", f"--rig={FD_RIG}",
                                f"--spec={spec}", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines + result.outlines if line.startswith("ERROR:")]
    assert errors and errors[0].startswith("ERROR: coverage gate: requirement FD-NEUTRAL (")


def test_the_fd_suite_is_deselected_on_a_traction_table(pytester, tmp_path):
    pytester.makepyfile(**SUITE_FILES)
    spec = tmp_path / "small.yaml"
    data = yaml.safe_load((SPECS_DIR / "lumbar.yaml").read_text(encoding="utf-8"))
    data["requirements"] = [r for r in data["requirements"] if r["id"] == "ER-RESIDUAL"]
    spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = pytester.runpytest(f"--run-dir={tmp_path / 'runs'}", *INNER, "--strict-markers", f"--rig={LUMBAR_RIG}",
                                f"--spec={spec}", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.outlines + result.errlines
    out = "\n".join(result.outlines)
    assert "test_traction.py::test_release" in out and "test_fd.py" not in out


def test_the_project_suites_each_carry_their_protocol():
    """Every suite module is marked (a module without a mark would run on every table)."""
    import ast

    for path in sorted((REPO / "suites").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        marks = [node for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", None) == "pytestmark" for t in node.targets)]
        assert marks, f"{path.name}: no pytestmark"
        text = ast.unparse(marks[0].value)
        expected = "FDC-1" if path.name.startswith("test_fd_") else "TCM-1"
        assert f"pytest.mark.protocol('{expected}')" in text, f"{path.name}: {text}"


def test_plan_collection_of_the_fd_spec_holds_only_fd_suites_and_the_lumbar_none():
    from fixtures.plan_collect import collect_plan

    fd = collect_plan("flexion-distraction")
    assert fd and all("suites/test_fd_" in row.nodeid for row in fd)
    assert any(row.test == "test_treatment_kinematics" for row in fd)
    lumbar = collect_plan("lumbar")
    assert lumbar and not any("test_fd_" in row.nodeid for row in lumbar)


# ---------------------------------------------------------------- the "released" rule
def _fd_status(force_n: float, brake: bool, phase=FdPhase.IDLE) -> FlexionStatus:
    return FlexionStatus(ready=True, enabled=False, running=False, at_neutral=True, estop_latched=False,
                         overforce_tripped=False, patient_switch_pressed=False, patient_switch_connected=True,
                         watchdog_tripped=False, fault=False, overtravel_tripped=False, obstruction_tripped=False,
                         brake_engaged=brake, force_n=force_n, phase=phase, fault_code=FdFault.NONE, uptime_s=1.0,
                         flexion_deg=3.0, lateral_deg=0.0, last_reject=RejectReason.NONE, cycle_count=0,
                         host_ns=time.perf_counter_ns())


def _tcm_status(force_n: float) -> ControllerStatus:
    return ControllerStatus(ready=True, enabled=False, running=False, at_target=False, estop_latched=False,
                            overforce_tripped=False, patient_switch_pressed=False, patient_switch_connected=True,
                            watchdog_tripped=False, fault=False, force_n=force_n, phase=Phase.IDLE,
                            fault_code=FaultCode.NONE, uptime_s=1.0, position_m=0.0, last_reject=RejectReason.NONE,
                            host_ns=time.perf_counter_ns())


def test_each_protocol_states_what_released_takes():
    assert _tcm_status(9.9).released(10.0) and not _tcm_status(10.1).released(10.0)
    assert TractionController.Status.released_by_force(9.9, 10.0)
    assert _fd_status(9.9, brake=True).released(10.0)
    assert not _fd_status(9.9, brake=False).released(10.0)  # the section free to move
    assert not _fd_status(10.1, brake=True).released(10.0)
    assert not FlexionController.Status.released_by_force(0.0, 10.0)  # a gauge never sees the brake



def test_the_heartbeat_lease_is_open_ended_only_on_a_released_section():
    """At rest by the protocol's own rule: an idle FD table with no force but its brake off
    keeps the short lease (its section can still move), as one holding force does."""
    from types import SimpleNamespace

    from drivers.watchdog import HeartbeatKeeper

    keeper = SimpleNamespace(lease=SimpleNamespace(at_rest=lambda sent_ns: True))
    assert HeartbeatKeeper.at_rest(keeper, _fd_status(0.0, brake=True), 10.0)
    assert not HeartbeatKeeper.at_rest(keeper, _fd_status(0.0, brake=False), 10.0)
    assert not HeartbeatKeeper.at_rest(keeper, _fd_status(0.0, brake=True, phase=FdPhase.EMERGENCY_STOPPED), 10.0)
    assert HeartbeatKeeper.at_rest(keeper, _tcm_status(9.9), 10.0) and not HeartbeatKeeper.at_rest(
        keeper, _tcm_status(10.1), 10.0)

class _FakeController:
    """A controller link answering the statuses it is given, one per read (the last repeated)."""

    def __init__(self, statuses) -> None:
        self.statuses = list(statuses)
        self.reads = 0

    def status(self):
        self.reads += 1
        return self.statuses[min(self.reads, len(self.statuses)) - 1]


@dataclasses.dataclass
class _FakeRig:
    controller: object
    gauge: object = None
    safety: object = None
    stimulus: object = None

    def release_attempts(self):
        return [[]]  # the commands were taken


class _DeadTcm:
    """A TCM-1 controller whose every link is dead: what the class says of its status stays."""

    Status = ControllerStatus

    def status(self):
        raise OSError("no reply")


class _DeadFd(_DeadTcm):
    Status = FlexionStatus


class _Gauge:
    resource = "TCPIP::127.0.0.1::1::SOCKET"
    streaming = False

    def read(self) -> float:
        return 0.2


def test_an_fd_release_is_confirmed_only_once_the_section_is_braked():
    ctrl = _FakeController([_fd_status(0.5, brake=False), _fd_status(0.5, brake=False), _fd_status(0.4, brake=True)])
    state = release(_FakeRig(ctrl), residual_n=10.0, release_wall_s=2.0)
    assert state.confirmed and state.status.brake_engaged and state.last.force_n == 0.4
    assert ctrl.reads == 3  # the two unbraked readings at 0.5 N confirmed nothing


def test_an_fd_section_never_braked_is_not_confirmed_and_the_line_says_why():
    ctrl = _FakeController([_fd_status(0.5, brake=False)])
    state = release(_FakeRig(ctrl), residual_n=10.0, release_wall_s=0.05)
    assert not state.confirmed and ctrl.reads > 1
    assert "brake" in state.loud_line("emulated-flexion-distraction")


def test_the_gauge_alone_confirms_a_traction_release_but_not_an_fd_one():
    state = release(_FakeRig(controller=_DeadTcm(), gauge=_Gauge()), residual_n=10.0, release_wall_s=0.05)
    assert state.confirmed and "reference gauge" in state.last.by
    state = release(_FakeRig(controller=_DeadFd(), gauge=_Gauge()), residual_n=10.0, release_wall_s=0.05)
    assert not state.confirmed and "reference gauge" in state.last.by and state.last.force_n == 0.2


# ---------------------------------------------------------------- calibrations
def _expired(rig, path: str):
    """The rig file with one instrument's calibration due yesterday (dotted path)."""
    data = rig.model_dump(mode="json")
    node = data
    for key in path.split("."):
        node = node[key]
    node["calibration"]["date"] = "2024-01-01"
    node["calibration"]["due"] = str(dt.date.today() - dt.timedelta(days=1))
    return type(rig).model_validate({**data, "source": rig.source})


@pytest.mark.parametrize("path, noun", [("gauge", "the gauge"), ("inclinometer", "the inclinometer"),
                                        ("obstacle.gauge", "the obstacle's load cell")])
def test_every_reference_instrument_of_an_fd_rig_is_refused_when_its_calibration_expired(path, noun):
    rig = load_rig(str(FD_RIG))
    assert calibration_refusal(rig) is None
    assert [key for key, _, _ in reference_instruments(rig)] == ["gauge", "inclinometer", "obstacle.gauge"]
    refusal = calibration_refusal(_expired(rig, path))
    assert refusal is not None
    assert f"{path}.calibration.due" in str(refusal) and f"recalibrate {noun}" in str(refusal)


def test_a_traction_rig_has_only_its_gauge_to_calibrate():
    assert [key for key, _, _ in reference_instruments(load_rig(str(LUMBAR_RIG)))] == ["gauge"]


# ---------------------------------------------------------------- the run-start record
def _run_start_line(rig) -> dict:
    return {"event": "run-start", "utc": "2026-12-05T04:00:00.000+00:00", "rig": rig.model_dump(mode="json"),
            "gauge": {"dialect": "scpi", "resource": "TCPIP::127.0.0.1::5025::SOCKET",
                      "calibration": rig.gauge.calibration.model_dump(mode="json"), "calibration_expired": False}}


def test_run_start_reads_the_inclinometer_and_the_obstacle_gauge_of_an_fd_run():
    rig = load_rig(str(FD_RIG))
    start = RunStart.from_line(json.loads(json.dumps(_run_start_line(rig))))
    tilt = start.inclinometer
    assert (tilt.dialect, tilt.serial, tilt.certificate, tilt.due) == ("tilt", "EMU-I-0001", "EMU-CAL-2026-002",
                                                                        "2027-03-01")
    assert tilt.expanded_uncertainty_deg == 0.02 and tilt.resolution_deg == 0.001 and not tilt.expired
    ob = start.obstacle_gauge
    assert (ob.serial, ob.calibration.certificate, ob.calibration.expired) == ("EMU-G-0002", "EMU-CAL-2026-003", False)
    late = dict(_run_start_line(rig), utc="2027-03-02T00:00:00.000+00:00")
    assert RunStart.from_line(late).inclinometer.expired  # the one rule: the run's day after the due date


def test_run_start_of_a_traction_run_has_neither():
    start = RunStart.from_line(_run_start_line(load_rig(str(LUMBAR_RIG))))
    assert start.inclinometer is None and start.obstacle_gauge is None


# ---------------------------------------------------------------- a rig and a spec of different protocols
def test_a_traction_spec_on_an_fd_rig_is_one_line():
    from drivers.errors import ConfigError
    from fixtures.plugin import _check_table_kind

    with pytest.raises(ConfigError) as err:
        _check_table_kind(load_rig(str(FD_RIG)), load_spec("lumbar"))
    line = str(err.value)
    assert "\n" not in line and "table.kind flexion-distraction (FDC-1)" in line and "lumbar tables (TCM-1)" in line
    _check_table_kind(load_rig(str(FD_RIG)), load_spec("flexion-distraction"))  # the same protocol: silent


# ---------------------------------------------------------------- the treatment-time model
def test_a_move_is_a_trapezoid_or_a_triangle():
    assert move_s(25, 20, 40) == pytest.approx(25 / 20 + 20 / 40)  # reaches 20 °/s after 5°
    assert move_s(3, 20, 40) == pytest.approx(2 * (3 / 40) ** 0.5)  # too short to reach it


def test_each_treatment_of_the_plan_ends_by_the_end_its_comment_says():
    spec = load_spec("flexion-distraction")
    rate = spec.plan.distraction_rate_n_s
    ends = {t.test_id: plan_of(t, rate).ended_by for t in spec.plan.treatments}
    assert ends["flexion-10deg-10dps-p4-r2-30s"] == "time"
    assert ends["flexion-6deg-12dps-p0.5-r0.5-4c-60s-100N"] == "count"  # both set: the count first
    assert ends["flexion-3deg-20dps-p0-r0-3c"] == "count"
    lateral = next(t for t in spec.plan.treatments if t.mode == "lateral")
    assert cycle_s(lateral) == pytest.approx(2 * (2 * move_s(lateral.depth_deg, lateral.speed_deg_s)
                                                  + lateral.pause_s + lateral.rest_s))


def test_the_budget_plans_each_quick_treatment_and_none_of_the_full_ones_in_quick():
    spec = load_spec("flexion-distraction")
    for t in spec.plan.treatments:
        quick = estimate(spec, "test_treatment_kinematics", {"fd_treatment": t}, "quick")
        full = estimate(spec, "test_treatment_kinematics", {"fd_treatment": t}, "full")
        assert full >= plan_of(t, spec.plan.distraction_rate_n_s).total_s
        assert quick == (full if t.profile == "quick" else 0.0)


# ---------------------------------------------------------------- rig lab export: the rig file's emulator
def test_lab_export_starts_the_emulated_table_with_the_rig_files_emulator_options(monkeypatch, tmp_path):
    """The obstacle's angle reaches the exported emulator as it reaches the one open_rig
    starts (rigs.rig.emulator_options), with --host after it."""
    import argparse

    from drivers.errors import RigError
    from rigcli import lab
    from rigs.rig import emulator_options

    data = yaml.safe_load(FD_RIG.read_text(encoding="utf-8"))
    data["obstacle"]["angle_deg"] = 12.5
    rig_file = tmp_path / "fd-12.yaml"
    rig_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    asked = {}

    def start(kind, seed, time_scale, faults, *rest, extra=None, **kw):
        asked.update(kind=kind, extra=extra)
        raise RigError("stopped here by the test")

    monkeypatch.setattr(lab.EmulatorProcess, "start", staticmethod(start))
    parser = argparse.ArgumentParser()
    lab.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["lab", "export", "--rig", str(rig_file), "--host", "127.0.0.1"])
    with pytest.raises(RigError, match="stopped here"):
        lab.export(args)
    assert asked["kind"] == "flexion-distraction"
    assert asked["extra"] == [*emulator_options(load_rig(str(rig_file))), "--host", "127.0.0.1"]
    assert asked["extra"][:2] == ["--obstacle-angle", "12.5"]
