"""Rig files: the shipped ones load; every kind of mistake is one line naming file and key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from drivers.errors import ConfigError
from rigs.config import DEFAULT_RIG, RIGS_DIR, load_rig

BENCH = yaml.safe_load((RIGS_DIR / "bench-example.yaml").read_text())


@pytest.mark.parametrize("name", ["emulated-lumbar", "emulated-cervical", "bench-example"])
def test_shipped_rig_files_load(name):
    rig = load_rig(RIGS_DIR / f"{name}.yaml")
    assert rig.safety_limit_n > 0
    assert rig.gauge.calibration.due > rig.gauge.calibration.date


def test_default_rig_is_emulated_lumbar():
    rig = load_rig(None)
    assert rig.source == DEFAULT_RIG and rig.is_emulated and rig.table.kind == "lumbar"


def test_rig_by_short_name():
    assert load_rig("emulated-cervical").table.kind == "cervical"


def test_bench_example_is_a_real_bench():
    rig = load_rig(RIGS_DIR / "bench-example.yaml")
    assert not rig.is_emulated and rig.time_scale == 1.0
    assert rig.gauge.resource == "ASRL/dev/ttyUSB0::INSTR" and rig.gauge.dialect == "gcl"


def test_forces_with_units_are_converted():
    data = copy.deepcopy(BENCH)
    data["gauge"]["capacity_n"] = "225 lbF"
    data["safety_limit_n"] = "0.5 kN"
    from rigs.config import rig_from_dict

    rig = rig_from_dict(data, "x.yaml")
    assert rig.gauge.capacity_n == pytest.approx(1000.85, abs=0.01)
    assert rig.safety_limit_n == 500.0


def mutate(tmp_path: Path, fn) -> str:
    data = copy.deepcopy(BENCH)
    fn(data)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_rig(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text
    return text


def test_unknown_key(tmp_path):
    text = mutate(tmp_path, lambda d: d["gauge"].update(resorce="x"))
    assert "gauge.resorce" in text and "unknown key" in text


def test_missing_field(tmp_path):
    text = mutate(tmp_path, lambda d: d["gauge"]["calibration"].pop("due"))
    assert "gauge.calibration.due" in text and "missing" in text


def test_bad_resource_string(tmp_path):
    text = mutate(tmp_path, lambda d: d["gauge"].update(resource="ASRL::ttyUSB0"))
    assert "gauge.resource" in text and "VISA resource" in text


def test_unit_mistake(tmp_path):
    text = mutate(tmp_path, lambda d: d["gauge"].update(capacity_n="5 s"))
    assert "gauge.capacity_n" in text and "not a force" in text


def test_wrong_dialect(tmp_path):
    text = mutate(tmp_path, lambda d: d["gauge"].update(dialect="mark10"))
    assert "gauge.dialect" in text and "gcl" in text


def test_bad_date(tmp_path):
    assert "gauge.calibration.date" in mutate(tmp_path, lambda d: d["gauge"]["calibration"].update(date="yesterday"))


def test_due_before_date(tmp_path):
    text = mutate(tmp_path, lambda d: d["gauge"]["calibration"].update(due="2020-01-01"))
    assert "due" in text and "after" in text


def test_port_out_of_range(tmp_path):
    assert "controller.port" in mutate(tmp_path, lambda d: d["controller"].update(port=70000))


def test_real_bench_cannot_run_fast(tmp_path):
    assert "time_scale" in mutate(tmp_path, lambda d: d.update(time_scale=10))


def test_rtu_needs_serial_port(tmp_path):
    assert "serial_port" in mutate(tmp_path, lambda d: d["controller"].update(transport="rtu"))


def test_not_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_rig(path)
    assert "not valid YAML" in str(err.value) and "line" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_rig(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err.value) and "--rig" in str(err.value)


def test_cli_prints_one_line(tmp_path, capsys):
    from rigcli.main import main

    path = tmp_path / "bad.yaml"
    data = copy.deepcopy(BENCH)
    data["gauge"]["dialect"] = "mark10"
    path.write_text(yaml.safe_dump(data))
    assert main(["check", "--rig", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("rig: ") and "gauge.dialect" in err
