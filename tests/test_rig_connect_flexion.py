"""A flexion-distraction bench opened through the one connect path, in-process, against
servers with fixed content: an FDC-1 on pymodbus's own storage (tests/conftest.py
`fixed_modbus`), an SIO-1 with or without the obstacle slide, and the reference
instruments' models (two SCPI force gauges, the tilt inclinometer) on ephemeral ports.
Each instrument reads a different fixed value, so a test sees which device each role
of the `Rig` was opened on."""

from __future__ import annotations

import copy
from contextlib import contextmanager

import pytest
import yaml
from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.errors import ConfigError, DeviceProtocolError, RigError
from drivers.fdc1 import encode_serial
from drivers.flexion_controller import FlexionController
from drivers.gauge import ScpiGauge
from drivers.inclinometer import TiltInclinometer
from drivers.links import ModbusLink, VisaInstrument
from drivers.tcm1 import StimulusCoil
from rigs.config import RIGS_DIR, load_rig, rig_from_dict
from rigs.emulator.gauges import ScpiGauge as ScpiModel
from rigs.emulator.inclinometer import FunctionAngleSource
from rigs.emulator.inclinometer import TiltInclinometer as TiltModel
from rigs.endpoints import Endpoints, SocketInstrument, TcpEndpoint
from rigs.rig import RigResources, connect, emulator_options, open_rig
from tests.gauge_helpers import FakeClock, FunctionSource, resource, served

pytestmark = pytest.mark.timeout(60)

FD_BENCH = yaml.safe_load((RIGS_DIR / "bench-flexion-example.yaml").read_text())
#: what each instrument reads: strap force, obstacle force, section angles (x, y)
STRAP_N, OBSTACLE_N, ANGLES = 120.0, 7.5, (12.5, -3.0)


def fdc1(kind: int = 4) -> SimDevice:
    """An idle FDC-1: ready, switch connected, brake engaged; rated 300 N, 25°, 15° a side."""
    di = [True, False, False, True, False, False, False, True, False, False, False, False, True]
    identity = [0x0100, 0x0102, 3000, kind] + encode_serial("FD-2026-000042") + [250, 150, 200, 400, 1300, 30]
    return SimDevice(id=1, simdata=(
        [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
        [SimData(0, values=di + [False] * 3, datatype=DataType.BITS)],
        [SimData(0, values=[0] * 16, datatype=DataType.REGISTERS)],
        [SimData(0, values=[0] * 9, datatype=DataType.REGISTERS),
         SimData(100, values=identity, datatype=DataType.REGISTERS)],
    ))


def sio1(slide: bool) -> SimDevice:
    """An SIO-1; without a slide it answers coil 4 with 02, as the contract says."""

    async def no_coil_4(function_code, start_address, address, count, registers, values):
        if function_code in (1, 5, 15) and address + (count or 1) > 4:
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    regs = [SimData(0, values=[0], datatype=DataType.REGISTERS)]
    return SimDevice(id=1, simdata=(bits, bits, regs, regs), action=None if slide else no_coil_4)


@contextmanager
def bench(fixed_modbus, *, kind: int = 4, slide: bool = True, change=None):
    """The example flexion bench's rig file pointed at the fixed servers, and its resources."""
    clock = FakeClock(1.0)
    with served(lambda: ScpiModel(FunctionSource(STRAP_N, clock), noise_n=0.0),
                lambda: ScpiModel(FunctionSource(OBSTACLE_N, clock), noise_n=0.0,
                                  identity=("TractionRig", "LCI-3000", "EMU-G-0002", "1.0")),
                lambda: TiltModel(FunctionAngleSource(ANGLES, clock), noise_deg=0.0)) as srv:
        data = copy.deepcopy(FD_BENCH)
        data["controller"].update(host="127.0.0.1", port=fixed_modbus(fdc1(kind)), timeout_s=2.0)
        data["stimulus"].update(host="127.0.0.1", port=fixed_modbus(sio1(slide)))
        data["gauge"].update(resource=resource(srv.ports[0]), dialect="scpi")
        data["obstacle"]["gauge"]["resource"] = resource(srv.ports[1])
        data["inclinometer"]["resource"] = resource(srv.ports[2])
        if change is not None:
            change(data)
        config = rig_from_dict(data, "fd-bench.yaml")
        yield config, RigResources.of(config)


def test_the_rig_files_resources_name_each_instrument_by_its_dialect(fixed_modbus):
    with bench(fixed_modbus) as (config, res):
        assert res.inclinometer == VisaInstrument(config.inclinometer.resource, "tilt", 2.0)
        assert res.obstacle_gauge == VisaInstrument(config.obstacle.gauge.resource, "scpi", 2.0)
        assert res.gauge.resource != res.obstacle_gauge.resource
        assert res.controller == ModbusLink.tcp("127.0.0.1", config.controller.port, 1, 2.0)


def test_an_fd_bench_opens_every_device_in_its_role(fixed_modbus):
    with bench(fixed_modbus) as (config, res), connect(config, res) as rig:
        assert isinstance(rig.controller, FlexionController) and isinstance(rig.safety, FlexionController)
        assert rig.controller.device.startswith("flexion-distraction controller (test link) (modbus-tcp://")
        assert rig.safety.device.startswith("flexion-distraction controller (safety link) (modbus-tcp://")
        assert rig.controller.identity().rated_depth_deg == 25.0
        assert isinstance(rig.gauge, ScpiGauge) and isinstance(rig.obstacle_gauge, ScpiGauge)
        assert rig.gauge.read() == STRAP_N and rig.obstacle_gauge.read() == OBSTACLE_N
        assert isinstance(rig.inclinometer, TiltInclinometer)
        reading = rig.inclinometer.read()
        assert (reading.x_deg, reading.y_deg) == ANGLES
        assert rig.inclinometer.time_scale == rig.gauge.time_scale == config.time_scale
        assert rig.stimulus.relays[-1] is StimulusCoil.OBSTACLE
        assert rig.stimulus.press(StimulusCoil.OBSTACLE) > 0
        assert rig.stimulus.states()[StimulusCoil.OBSTACLE] is True
        assert rig.stimulus.release_all() == []
        assert rig.patient_simulator is None and rig.emulator is None


def test_a_bench_without_an_obstacle_has_no_slide_and_no_obstacle_gauge(fixed_modbus):
    with bench(fixed_modbus, slide=False, change=lambda d: d.pop("obstacle")) as (config, res):
        assert res.obstacle_gauge is None
        with connect(config, res) as rig:
            assert rig.obstacle_gauge is None and isinstance(rig.inclinometer, TiltInclinometer)
            assert StimulusCoil.OBSTACLE not in rig.stimulus.relays
            assert rig.stimulus.release_all() == []  # coil 4, which this module refuses, is not rested


@pytest.mark.parametrize("axis, angle, line", [
    ("flexion", 30.0,
     "obstacle.angle_deg: 30° is beyond the table's rated flexion travel (25°, its controller says)"),
    ("lateral", -16.0,
     "obstacle.angle_deg: -16° is beyond the table's rated lateral travel (15°, its controller says)"),
])
def test_an_obstacle_beyond_the_rated_travel_is_one_line_and_nothing_stays_open(fixed_modbus, monkeypatch, axis,
                                                                                 angle, line):
    closed = []
    close = FlexionController.close
    monkeypatch.setattr(FlexionController, "close", lambda self: (closed.append(self.device), close(self))[1])
    with bench(fixed_modbus, change=lambda d: d["obstacle"].update(axis=axis, angle_deg=angle)) as (config, res):
        with pytest.raises(ConfigError) as err:
            connect(config, res)
    assert str(err.value) == (f"fd-bench.yaml: {line}: the section never meets it; set the bench's obstacle angle")
    assert sorted(name.split(" (modbus")[0] for name in closed) == [
        "flexion-distraction controller (safety link)", "flexion-distraction controller (test link)"]


def test_an_obstacle_within_the_rated_lateral_travel_is_accepted(fixed_modbus):
    with bench(fixed_modbus, change=lambda d: d["obstacle"].update(axis="lateral", angle_deg=-15.0)) as (config, res):
        with connect(config, res) as rig:
            assert rig.config.obstacle.angle_deg == -15.0


def test_a_tcm1_found_where_the_rig_says_flexion_distraction_is_one_line(fixed_modbus):
    with bench(fixed_modbus, kind=1) as (config, res):
        with pytest.raises(DeviceProtocolError) as err:
            connect(config, res)
    text = str(err.value)
    assert "\n" not in text and text.startswith("flexion-distraction controller (safety link)")
    assert text.endswith("DEVICE_KIND 1 is a TCM-1 controller, not FDC-1 — "
                         "set table.kind to one of lumbar, cervical")


def test_the_emulator_is_asked_for_the_rig_files_obstacle():
    assert emulator_options(load_rig("emulated-flexion-distraction")) == ["--obstacle-angle", "10.0"]
    assert emulator_options(load_rig("emulated-lumbar")) == []
    assert emulator_options(load_rig("emulated-serial")) == ["--serial-lines", "--rtu-parity",
                                                            load_rig("emulated-serial").controller.parity]


# ------------------------------------------------------------------ a started emulator's endpoints
def fd_endpoints(**kw) -> Endpoints:
    """What `rig emulate --kind flexion-distraction` prints, typed (ports made up)."""
    socket = lambda port: SocketInstrument(port, f"TCPIP::127.0.0.1::{port}::SOCKET")  # noqa: E731
    fields = dict(controller=TcpEndpoint("127.0.0.1", 41001, 1), stimulus=TcpEndpoint("127.0.0.1", 41002, 1),
                  gauges={"gcl": socket(41004), "scpi": socket(41005)},
                  patient_simulator=TcpEndpoint("127.0.0.1", 41003, 1), kind="flexion-distraction", seed=1,
                  inclinometer=socket(41006), obstacle_gauges={"gcl": socket(41007), "scpi": socket(41008)})
    fields.update(kw)
    return Endpoints(**fields)


def test_a_started_emulator_gives_the_inclinometer_and_the_obstacle_gauge_of_the_rig_files_dialect():
    config = load_rig("emulated-flexion-distraction")
    res = RigResources.of(config, fd_endpoints())
    assert res.gauge == VisaInstrument("TCPIP::127.0.0.1::41005::SOCKET", "scpi", 2.0)
    assert res.inclinometer == VisaInstrument("TCPIP::127.0.0.1::41006::SOCKET", "tilt", 2.0)
    assert res.obstacle_gauge == VisaInstrument("TCPIP::127.0.0.1::41008::SOCKET", "scpi", 2.0)
    assert res.patient_simulator == ModbusLink.tcp("127.0.0.1", 41003)


def test_a_traction_emulator_under_a_flexion_rig_file_is_one_line():
    config = load_rig("emulated-flexion-distraction")
    with pytest.raises(RigError) as err:
        RigResources.of(config, fd_endpoints(kind="lumbar", inclinometer=None, obstacle_gauges=None))
    assert str(err.value) == "the emulator (lumbar) serves no inclinometer; check the rig file's table.kind"
    with pytest.raises(RigError) as err:
        RigResources.of(config, fd_endpoints(obstacle_gauges={"gcl": SocketInstrument(1, "TCPIP::h::1::SOCKET")}))
    assert str(err.value) == ("the emulator (flexion-distraction) serves no scpi obstacle gauge (it serves gcl); "
                              "check obstacle.gauge.dialect")


def test_a_traction_rig_never_asks_an_emulator_for_flexion_instruments():
    res = RigResources.of(load_rig("emulated-lumbar"), fd_endpoints(kind="lumbar", inclinometer=None,
                                                                    obstacle_gauges=None))
    assert res.inclinometer is None and res.obstacle_gauge is None


def test_the_embedded_fd_rig_opens_on_the_emulator_it_starts():
    """open_rig starts `rig emulate --kind flexion-distraction` with the rig file's obstacle
    angle and opens each role on the instrument the emulator serves for it."""
    with open_rig(load_rig("emulated-flexion-distraction")) as rig:
        args = rig.emulator.process.args
        assert args[args.index("--kind") + 1] == "flexion-distraction"
        assert args[args.index("--obstacle-angle") + 1] == "10.0"
        assert isinstance(rig.controller, FlexionController) and rig.controller.identity().rated_force_n == 300.0
        ep = rig.emulator_endpoints
        assert rig.inclinometer.resource == ep.inclinometer.resource
        assert rig.obstacle_gauge.resource == ep.obstacle_gauges["scpi"].resource != rig.gauge.resource
        assert abs(rig.inclinometer.read().x_deg) < 0.5  # the section at neutral
        assert abs(rig.obstacle_gauge.read()) < 1.0  # the slide withdrawn, nothing pressing on it
        assert rig.stimulus.relays[-1] is StimulusCoil.OBSTACLE
        assert rig.endpoints["inclinometer"]["resource"] == ep.inclinometer.resource
        process = rig.emulator.process
    assert process.poll() is not None  # closing the rig stopped its emulator
