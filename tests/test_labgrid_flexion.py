"""labgrid: a flexion-distraction bench described by a labgrid target is the same rig as
its rig file — the inclinometer and the obstacle's load cell are resources of their own
(InclinometerVISA, ObstacleGaugeVISA), exported, read back and resolved by their drivers
into the `RigResources` the one connect path opens — and a resource missing or out of
place for the table kind is one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drivers.errors import ConfigError
from drivers.links import VisaInstrument
from rigs.config import load_rig
from rigs.lab_env import attached_rig, exporter_config, lab_target, load_environment, target_resources
from rigs.rig import RigResources

ROOT = Path(__file__).resolve().parent.parent
FD_BENCH = ROOT / "rigs" / "bench-flexion-example.yaml"
FD_CLASSES = {"TractionTable", "TractionControllerTCP", "StimulusModuleTCP", "ForceGaugeVISA", "InclinometerVISA",
              "ObstacleGaugeVISA"}


def local_env(tmp_path: Path, resources: dict) -> Path:
    """A labgrid environment whose one target holds `resources` ({class: params}) itself."""
    path = tmp_path / "env.yaml"
    target = {"resources": [{cls: dict(params)} for cls, params in resources.items()]}
    path.write_text(yaml.safe_dump({"targets": {"main": target}, "imports": ["drivers.labgrid_drivers"]}))
    return path


def fd_group() -> dict:
    return exporter_config(load_rig(FD_BENCH), "b")["b"]


def config_of(tmp_path: Path, group: dict):
    return lab_target(load_environment(local_env(tmp_path, group)), "main")


def test_the_exporter_file_of_an_fd_bench_gives_back_its_rig(tmp_path):
    from labgrid.remote.config import ResourceConfig  # the exporter's own reader

    out = tmp_path / "exporter.yaml"
    subprocess.run([sys.executable, "-m", "rigcli", "lab", "export", "--rig", str(FD_BENCH), "--place", "bench-5",
                    "--config-only", "--config-out", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=60,
                   stdin=subprocess.DEVNULL)
    group = ResourceConfig(str(out)).data["bench-5"]
    assert set(group) == FD_CLASSES
    assert group["InclinometerVISA"]["calibration_uncertainty_deg"] == 0.05
    assert (group["ObstacleGaugeVISA"]["angle_deg"], group["ObstacleGaugeVISA"]["axis"]) == (10.0, "flexion")
    again = config_of(tmp_path, group).config
    rig = load_rig(FD_BENCH)
    assert again.model_dump(exclude={"name", "source"}) == rig.model_dump(exclude={"name", "source"})


def test_a_traction_exporter_file_has_no_flexion_resources():
    group = exporter_config(load_rig(ROOT / "rigs" / "bench-example.yaml"), "b")["b"]
    assert set(group) == {"TractionTable", "TractionControllerTCP", "StimulusModuleTCP", "ForceGaugeVISA"}


def test_an_fd_bench_without_an_obstacle_exports_no_obstacle(tmp_path):
    group = fd_group()
    del group["ObstacleGaugeVISA"]
    lab = config_of(tmp_path, group)
    try:
        assert lab.config.obstacle is None and set(exporter_config(lab.config, "b")["b"]) == FD_CLASSES - {
            "ObstacleGaugeVISA"}
        assert target_resources(lab.target, lab.config).obstacle_gauge is None
    finally:
        lab.target.deactivate_all_drivers()


def test_a_target_and_its_rig_file_give_the_same_resources(tmp_path):
    """What the labgrid drivers resolve is what the rig file says, the inclinometer and the
    obstacle gauge included: rigs.rig.connect cannot tell which description it was given."""
    lab = config_of(tmp_path, fd_group())
    try:
        resources = target_resources(lab.target, lab.config)
        assert resources == RigResources.of(load_rig(FD_BENCH))
        assert resources.inclinometer == VisaInstrument("ASRL/dev/ttyUSB1::INSTR", "tilt", 2.0)
        assert resources.obstacle_gauge == VisaInstrument("TCPIP::192.168.10.33::5025::SOCKET", "scpi", 2.0)
    finally:
        lab.target.deactivate_all_drivers()


def test_an_fd_target_without_its_inclinometer_is_one_line_naming_the_resource(tmp_path):
    group = fd_group()
    del group["InclinometerVISA"]
    with pytest.raises(ConfigError) as err:
        config_of(tmp_path, group)
    assert str(err.value) == (
        f"{tmp_path / 'env.yaml'} (labgrid target main): no InclinometerVISA resource (resources found: "
        "ForceGaugeVISA, ObstacleGaugeVISA, StimulusModuleTCP, TractionControllerTCP, TractionTable); add it to the "
        "target, or to the exporter of its place")


@pytest.mark.parametrize("cls", ["InclinometerVISA", "ObstacleGaugeVISA"])
def test_a_traction_target_with_a_flexion_resource_is_one_line_naming_it(tmp_path, cls):
    group = exporter_config(load_rig(ROOT / "rigs" / "bench-example.yaml"), "b")["b"]
    group[cls] = fd_group()[cls]
    noun = {"InclinometerVISA": "reference inclinometer",
            "ObstacleGaugeVISA": "obstacle slide with its load cell"}[cls]
    with pytest.raises(ConfigError) as err:
        config_of(tmp_path, group)
    assert str(err.value) == (f"{tmp_path / 'env.yaml'} (labgrid target main): {cls}: a lumbar table has no use for "
                              f"a {noun}; remove the {cls} resource (or check table.kind)")


@pytest.mark.parametrize("cls, param, value, says", [
    ("InclinometerVISA", "range_deg", "wide", "InclinometerVISA.range_deg: expected a plane angle"),
    # a rule across two parameters names the rig key they fill, as the force gauge's does
    ("InclinometerVISA", "calibration_due", "2020-01-01", "inclinometer.calibration: due 2020-01-01 must be "
                                                          "after date 2026-04-02"),
    ("ObstacleGaugeVISA", "angle_deg", 50, "ObstacleGaugeVISA.angle_deg: 50° is outside the inclinometer's range"),
    ("ObstacleGaugeVISA", "capacity_n", "ten newtons", "ObstacleGaugeVISA.capacity_n: "),
])
def test_a_bad_parameter_names_the_resource_parameter(tmp_path, cls, param, value, says):
    group = fd_group()
    group[cls][param] = value
    with pytest.raises(ConfigError) as err:
        config_of(tmp_path, group)
    assert f"(labgrid target main): {says}" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("cls, param, value", [("InclinometerVISA", "dialect", "scpi"),
                                               ("ObstacleGaugeVISA", "dialect", "tilt"),
                                               ("ObstacleGaugeVISA", "axis", "circumduction")])
def test_a_resource_refuses_what_no_bench_has(tmp_path, cls, param, value):
    group = fd_group()
    group[cls][param] = value
    with pytest.raises(ConfigError, match=rf"env\.yaml: target main: .*'{param}' must be"):
        config_of(tmp_path, group)


def test_a_started_fd_emulator_is_exported_with_the_instruments_it_serves(tmp_path):
    from rigs.endpoints import Endpoints, SocketInstrument, TcpEndpoint

    socket = lambda port: SocketInstrument(port, f"TCPIP::127.0.0.1::{port}::SOCKET")  # noqa: E731
    endpoints = Endpoints(TcpEndpoint("127.0.0.1", 41001, 1), TcpEndpoint("127.0.0.1", 41002, 1),
                          {"gcl": socket(41004), "scpi": socket(41005)}, TcpEndpoint("127.0.0.1", 41003, 1),
                          kind="flexion-distraction", seed=7, serial="EMU-FD-0007", inclinometer=socket(41006),
                          obstacle_gauges={"gcl": socket(41007), "scpi": socket(41008)})
    attached = attached_rig(load_rig("emulated-flexion-distraction"), endpoints)
    assert attached.emulated.attach and attached.emulated.seed == 7 and attached.table.serial == "EMU-FD-0007"
    assert attached.inclinometer.resource == "TCPIP::127.0.0.1::41006::SOCKET"
    assert attached.obstacle.gauge.resource == "TCPIP::127.0.0.1::41008::SOCKET"
    group = exporter_config(attached, "fd")["fd"]
    assert set(group) == FD_CLASSES | {"PatientSimulatorTCP"}
    assert group["TractionTable"]["emulated"] is True and group["ObstacleGaugeVISA"]["angle_deg"] == 10.0
    lab = config_of(tmp_path, group)
    try:
        assert lab.config.model_dump(exclude={"name", "source"}) == attached.model_dump(exclude={"name", "source"})
        assert target_resources(lab.target, lab.config) == RigResources.of(attached)
    finally:
        lab.target.deactivate_all_drivers()


@pytest.mark.timeout(60)
def test_a_running_fd_emulator_opens_through_its_labgrid_target(tmp_path):
    """The exporter's view of a running FD emulator, opened the labgrid way: the one connect
    path reaches its tilt inclinometer and obstacle gauge at the addresses the drivers resolve."""
    from drivers.tcm1 import StimulusCoil
    from rigs.rig import EmulatorProcess, emulator_options

    rig = load_rig("emulated-flexion-distraction")
    emulator = EmulatorProcess.start(rig.table.kind, 3, rig.time_scale, extra=emulator_options(rig))
    try:
        attached = attached_rig(rig, emulator.endpoints)
        lab = config_of(tmp_path, exporter_config(attached, "fd")["fd"])
        with lab.open() as opened:
            assert opened.inclinometer.resource == emulator.endpoints.inclinometer.resource
            assert opened.obstacle_gauge.resource == emulator.endpoints.obstacle_gauges["scpi"].resource
            assert abs(opened.inclinometer.read().x_deg) < 0.5
            assert StimulusCoil.OBSTACLE in opened.stimulus.relays
            assert opened.controller.identity().serial == "EMU-FD-0003"
    finally:
        emulator.stop()


def test_an_attached_fd_emulators_record_names_its_inclinometer_and_obstacle_gauge():
    """The run record's emulator entry of an attached FD emulator says where each instrument was."""
    from rigs.endpoints import Endpoints, SocketInstrument, TcpEndpoint

    socket = lambda port: SocketInstrument(port, f"TCPIP::127.0.0.1::{port}::SOCKET")  # noqa: E731
    served = Endpoints(TcpEndpoint("127.0.0.1", 41001, 1), TcpEndpoint("127.0.0.1", 41002, 1),
                       {"scpi": socket(41005)}, kind="flexion-distraction", seed=7, serial="EMU-FD-0007",
                       inclinometer=socket(41006), obstacle_gauges={"scpi": socket(41008)})
    attached = attached_rig(load_rig("emulated-flexion-distraction"), served)
    record = Endpoints.attached_to(attached).to_json()
    assert record["inclinometer"] == {"resource": attached.inclinometer.resource}
    assert record["obstacle_gauges"] == {"scpi": {"resource": "TCPIP::127.0.0.1::41008::SOCKET"}}
    assert list(record)[-2:] == ["inclinometer", "obstacle_gauges"]
