"""A flexion-distraction bench's rig file: the inclinometer and obstacle sections, each key
and each mistake in one line naming the file and the key, and the traction rig files
exactly as before (their dump is part of every run record)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from drivers.errors import ConfigError
from rigs.config import (
    AngleCalibration,
    Calibration,
    CalibrationPeriod,
    RIGS_DIR,
    load_rig,
    rig_from_dict,
    sections_for,
)

FD_BENCH = yaml.safe_load((RIGS_DIR / "bench-flexion-example.yaml").read_text())
FD_EMULATED = yaml.safe_load((RIGS_DIR / "emulated-flexion-distraction.yaml").read_text())
LUMBAR_BENCH = yaml.safe_load((RIGS_DIR / "bench-example.yaml").read_text())


def refused(tmp_path: Path, base: dict, change) -> str:
    """The one line a rig file made from `base` by `change` is refused with."""
    data = copy.deepcopy(base)
    change(data)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_rig(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: ")
    return text.removeprefix(f"{path}: ")


# ------------------------------------------------------------------ the shipped files
def test_the_emulated_flexion_distraction_rig():
    rig = load_rig("emulated-flexion-distraction")
    assert rig.is_emulated and not rig.emulated.attach and rig.time_scale == 10
    assert (rig.table.kind, rig.table.specification) == ("flexion-distraction", "flexion-distraction")
    assert rig.safety_limit_n == 300.0
    tilt = rig.inclinometer
    assert (tilt.resource, tilt.dialect, tilt.range_deg, tilt.resolution_deg) == (None, "tilt", 45.0, 0.001)
    assert isinstance(tilt.calibration, AngleCalibration) and tilt.calibration.expanded_uncertainty_deg == 0.02
    assert tilt.calibration.coverage_factor == 2.0 and tilt.timeout_s == 2.0
    ob = rig.obstacle
    assert (ob.axis, ob.angle_deg, ob.gauge.resource, ob.gauge.dialect) == ("flexion", 10.0, None, "scpi")
    assert isinstance(ob.gauge.calibration, Calibration) and ob.gauge.calibration.expanded_uncertainty_n == 0.5


def test_the_example_flexion_bench():
    rig = load_rig(RIGS_DIR / "bench-flexion-example.yaml")
    assert not rig.is_emulated and rig.time_scale == 1.0 and rig.table.kind == "flexion-distraction"
    assert rig.inclinometer.resource == "ASRL/dev/ttyUSB1::INSTR"
    assert rig.inclinometer.calibration.due == dt.date(2027, 4, 2)
    assert rig.obstacle.gauge.resource == "TCPIP::192.168.10.33::5025::SOCKET"


def test_traction_rig_files_dump_as_before():
    """No inclinometer/obstacle key in a traction rig's dump (it lands in the run record), and
    the force gauge's calibration keeps its keys in their order."""
    for name in ("emulated-lumbar", "emulated-cervical", "emulated-serial", "bench-example"):
        flat = load_rig(name).model_dump(mode="json")
        assert list(flat) == ["name", "description", "time_scale", "safety_limit_n", "emulated", "controller",
                              "stimulus", "gauge", "table"], name
        assert list(flat["gauge"]["calibration"]) == ["certificate", "date", "due", "expanded_uncertainty_n",
                                                      "coverage_factor"]
    fd = load_rig("emulated-flexion-distraction").model_dump(mode="json")
    assert list(fd)[-2:] == ["inclinometer", "obstacle"]
    assert list(fd["inclinometer"]["calibration"]) == ["certificate", "date", "due", "expanded_uncertainty_deg",
                                                       "coverage_factor"]


def test_a_dump_loads_back_as_the_same_rig():
    for name in ("emulated-flexion-distraction", "bench-flexion-example", "bench-example"):
        rig = load_rig(name)
        assert rig_from_dict(rig.model_dump(mode="json"), "again.yaml").model_dump() == rig.model_dump()


def test_both_calibrations_share_one_date_and_expiry_rule():
    assert issubclass(Calibration, CalibrationPeriod) and issubclass(AngleCalibration, CalibrationPeriod)
    cal = load_rig("bench-flexion-example").inclinometer.calibration
    assert not cal.expired(dt.date(2027, 4, 2)) and cal.expired(dt.date(2027, 4, 3))


def test_sections_follow_the_protocol_the_registry_names():
    assert sections_for("flexion-distraction").required == ("inclinometer",)
    assert sections_for("flexion-distraction").optional == ("obstacle",)
    assert sections_for("lumbar").allowed == () and sections_for("cervical").allowed == ()


# ------------------------------------------------------------------ the keys
def test_angles_take_a_unit():
    data = copy.deepcopy(FD_BENCH)
    data["obstacle"]["angle_deg"] = "0.2 rad"
    data["inclinometer"]["calibration"]["expanded_uncertainty_deg"] = "0.05 deg"
    rig = rig_from_dict(data, "x.yaml")
    assert rig.obstacle.angle_deg == pytest.approx(11.459, abs=1e-3)
    assert rig.inclinometer.calibration.expanded_uncertainty_deg == 0.05


def test_obstacle_is_optional_and_its_axis_defaults_to_flexion():
    data = copy.deepcopy(FD_BENCH)
    del data["obstacle"]
    assert rig_from_dict(data, "x.yaml").obstacle is None
    data = copy.deepcopy(FD_BENCH)
    del data["obstacle"]["axis"]
    assert rig_from_dict(data, "x.yaml").obstacle.axis == "flexion"


def test_a_lateral_obstacle_is_on_either_side():
    for angle in (8.0, -8.0):
        data = copy.deepcopy(FD_BENCH)
        data["obstacle"].update(axis="lateral", angle_deg=angle)
        assert rig_from_dict(data, "x.yaml").obstacle.angle_deg == angle


def test_timeouts_and_coverage_factor_are_optional_with_the_gauges_defaults():
    data = copy.deepcopy(FD_BENCH)
    data["inclinometer"]["timeout_s"] = "500 ms"
    data["inclinometer"]["calibration"]["coverage_factor"] = 3
    rig = rig_from_dict(data, "x.yaml")
    assert rig.inclinometer.timeout_s == 0.5 and rig.inclinometer.calibration.coverage_factor == 3.0


# ------------------------------------------------------------------ each mistake, one line
@pytest.mark.parametrize("change, line", [
    (lambda d: d.pop("inclinometer"),
     "inclinometer: a flexion-distraction table's bench needs its reference inclinometer; add an "
     "inclinometer: section (see rigs/bench-flexion-example.yaml)"),
    (lambda d: d["inclinometer"].update(dialect="scpi"),
     "inclinometer.dialect: 'scpi' is not an inclinometer dialect; expected one of tilt"),
    (lambda d: d["inclinometer"].update(resource="COM3"),
     "inclinometer.resource: 'COM3' is not a VISA resource string; expected e.g. "
     "'TCPIP::192.168.1.20::5025::SOCKET' or 'ASRL/dev/ttyUSB0::INSTR'"),
    (lambda d: d["inclinometer"].pop("resource"), "inclinometer: needs resource (VISA resource string)"),
    (lambda d: d["inclinometer"].update(range_deg=0),
     "inclinometer.range_deg: Input should be greater than 0, got 0.0"),
    (lambda d: d["inclinometer"].update(range_deg="45 N"),
     "inclinometer.range_deg: '45 N' is not a plane angle; write a number or use one of DEG, RAD"),
    (lambda d: d["inclinometer"].update(resolution_deg=50),
     "inclinometer: resolution_deg 50° must be below range_deg 45°"),
    (lambda d: d["inclinometer"].update(serial=""),
     "inclinometer.serial: String should have at least 1 character, got ''"),
    (lambda d: d["inclinometer"].update(rnage_deg=45),
     "inclinometer.rnage_deg: unknown key (remove it or check its spelling)"),
    (lambda d: d["inclinometer"]["calibration"].pop("expanded_uncertainty_deg"),
     "inclinometer.calibration.expanded_uncertainty_deg: missing (required)"),
    (lambda d: d["inclinometer"]["calibration"].update(expanded_uncertainty_n=0.05),
     "inclinometer.calibration.expanded_uncertainty_n: unknown key (remove it or check its spelling)"),
    (lambda d: d["inclinometer"]["calibration"].update(expanded_uncertainty_deg=0),
     "inclinometer.calibration.expanded_uncertainty_deg: Input should be greater than 0, got 0.0"),
    (lambda d: d["inclinometer"]["calibration"].update(due="2026-01-01"),
     "inclinometer.calibration: due 2026-01-01 must be after date 2026-04-02"),
    (lambda d: d["obstacle"].update(axis="circumduction"),
     "obstacle.axis: Input should be 'flexion' or 'lateral', got 'circumduction'"),
    (lambda d: d["obstacle"].pop("angle_deg"), "obstacle.angle_deg: missing (required)"),
    (lambda d: d["obstacle"].update(angle_deg=-5),
     "obstacle: angle_deg -5°: a flexion obstacle stands where the section is lowered, at an angle above 0°"),
    (lambda d: d["obstacle"].update(axis="lateral", angle_deg=0),
     "obstacle: angle_deg 0°: the section stands there at neutral; give the side's angle (+ left, - right)"),
    (lambda d: d["obstacle"].update(angle_deg=50),
     "obstacle.angle_deg: 50° is outside the inclinometer's range (±45°): the section meeting it could not be "
     "measured; check the obstacle angle"),
    (lambda d: d["obstacle"].pop("gauge"), "obstacle.gauge: missing (required)"),
    (lambda d: d["obstacle"]["gauge"].update(dialect="tilt"),
     "obstacle.gauge.dialect: 'tilt' is not a force gauge dialect; expected one of gcl, scpi"),
    (lambda d: d["obstacle"]["gauge"].pop("resource"), "obstacle.gauge: needs resource (VISA resource string)"),
    (lambda d: d["obstacle"]["gauge"]["calibration"].update(expanded_uncertainty_deg=0.5),
     "obstacle.gauge.calibration.expanded_uncertainty_deg: unknown key (remove it or check its spelling)"),
    (lambda d: d["obstacle"].update(slide="coil 4"), "obstacle.slide: unknown key (remove it or check its spelling)"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_each_mistake_in_a_flexion_bench_is_one_line(tmp_path, change, line):
    assert refused(tmp_path, FD_BENCH, change) == line


@pytest.mark.parametrize("section", ["inclinometer", "obstacle"])
def test_a_traction_table_given_a_flexion_section_is_one_line(tmp_path, section):
    noun = {"inclinometer": "reference inclinometer", "obstacle": "obstacle slide with its load cell"}
    text = refused(tmp_path, LUMBAR_BENCH, lambda d: d.update({section: copy.deepcopy(FD_BENCH[section])}))
    assert text == (f"{section}: a lumbar table has no use for a {noun[section]}; remove the {section}: section "
                    "(or check table.kind)")


def test_an_attached_emulator_needs_the_resources_a_started_one_has_none_of(tmp_path):
    def attach(d):
        d["emulated"]["attach"] = True
        d["controller"].update(host="127.0.0.1", port=5020)
        d["stimulus"].update(host="127.0.0.1", port=5021)
        d["gauge"]["resource"] = "TCPIP::127.0.0.1::5022::SOCKET"

    assert refused(tmp_path, FD_EMULATED, attach) == "inclinometer: needs resource (VISA resource string)"

    def attach_with_tilt(d):
        attach(d)
        d["inclinometer"]["resource"] = "TCPIP::127.0.0.1::5023::SOCKET"

    assert refused(tmp_path, FD_EMULATED, attach_with_tilt) == "obstacle.gauge: needs resource (VISA resource string)"
    data = copy.deepcopy(FD_EMULATED)
    attach_with_tilt(data)
    data["obstacle"]["gauge"]["resource"] = "TCPIP::127.0.0.1::5024::SOCKET"
    assert rig_from_dict(data, "x.yaml").obstacle.gauge.resource == "TCPIP::127.0.0.1::5024::SOCKET"


def test_a_started_emulator_has_its_obstacle_on_the_flexion_axis(tmp_path):
    text = refused(tmp_path, FD_EMULATED, lambda d: d["obstacle"].update(axis="lateral"))
    assert text == ("obstacle.axis: the emulated table's obstacle is on the flexion axis "
                    "(rig emulate --obstacle-angle); use axis: flexion")


def test_traction_mistakes_still_name_their_key_without_a_top_level_marker(tmp_path):
    text = refused(tmp_path, LUMBAR_BENCH, lambda d: d["controller"].pop("host"))
    assert text == "controller: a tcp controller needs host and port"
