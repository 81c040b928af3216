"""The emulator's endpoints, typed: the line `rig emulate` prints reads back into one
`Endpoints` and writes out byte for byte (other processes and old run records read that
line as JSON), and a rig file, a started emulator and an attached one all become the
`RigResources` that the one connect path opens."""

from __future__ import annotations

import json

import pytest
import yaml

from drivers.links import ModbusLink, VisaInstrument
from rigs.config import RIGS_DIR, load_rig, rig_from_dict
from rigs.endpoints import Endpoints, SerialEndpoint, SocketInstrument, TcpEndpoint
from rigs.lab_env import attached_rig
from rigs.rig import RigResources

#: lines as `rig emulate` printed them before the endpoints were typed (ports and pids vary)
TCP_LINE = ('{"kind": "lumbar", "seed": 3, "time_scale": 10.0, "faults": [], "wear": 0.0, "serial": "EMU-LUMB-0003", '
            '"pid": 4242, "controller": {"transport": "tcp", "host": "127.0.0.1", "port": 40001, "unit_id": 1}, '
            '"stimulus": {"host": "127.0.0.1", "port": 40002, "unit_id": 1}, '
            '"patient_simulator": {"host": "127.0.0.1", "port": 40003, "unit_id": 1}, '
            '"gauges": {"gcl": {"port": 40004, "resource": "TCPIP::127.0.0.1::40004::SOCKET"}, '
            '"scpi": {"port": 40005, "resource": "TCPIP::127.0.0.1::40005::SOCKET"}}}')
SERIAL_LINES = ('{"kind": "cervical", "seed": 0, "time_scale": 1.0, "faults": ["slow-release"], "wear": 0.0, '
                '"serial": "EMU-CERV-0000", "pid": 4243, "controller": {"transport": "rtu", "baudrate": 19200, '
                '"parity": "N", "unit_id": 1, "emulator_port": "/dev/pts/3", "port": "/dev/pts/4"}, '
                '"stimulus": {"host": "127.0.0.1", "port": 40012, "unit_id": 1}, '
                '"patient_simulator": {"host": "127.0.0.1", "port": 40013, "unit_id": 1}, '
                '"gauges": {"gcl": {"transport": "serial", "baudrate": 115200, "parity": "N", '
                '"emulator_port": "/dev/pts/5", "port": "/dev/pts/6", "resource": "ASRL/dev/pts/6::INSTR"}, '
                '"scpi": {"port": 40015, "resource": "TCPIP::127.0.0.1::40015::SOCKET"}}}')
WIRED_LINES = ('{"kind": "lumbar", "seed": 1, "time_scale": 2.0, "faults": [], "wear": 0.25, "serial": "EMU-LUMB-0001", '
               '"pid": 4244, "controller": {"transport": "rtu", "baudrate": 19200, "parity": "E", "unit_id": 1, '
               '"emulator_port": "/dev/ttyS1"}, "stimulus": {"host": "127.0.0.1", "port": 40022, "unit_id": 1}, '
               '"patient_simulator": {"host": "127.0.0.1", "port": 40023, "unit_id": 1}, '
               '"gauges": {"gcl": {"transport": "serial", "baudrate": 115200, "parity": "N", '
               '"emulator_port": "/dev/ttyS2"}, "scpi": {"port": 40025, "resource": '
               '"TCPIP::127.0.0.1::40025::SOCKET"}}}')


@pytest.mark.parametrize("line", [TCP_LINE, SERIAL_LINES, WIRED_LINES], ids=["tcp", "serial-lines", "wired"])
def test_the_printed_line_reads_back_and_writes_out_byte_for_byte(line):
    endpoints = Endpoints.from_line(line)
    assert endpoints.line() == line
    assert Endpoints.from_json(endpoints.to_json()) == endpoints


def test_typed_fields_say_what_a_client_opens():
    tcp = Endpoints.from_line(TCP_LINE)
    assert tcp.controller == TcpEndpoint("127.0.0.1", 40001, 1) and tcp.controller.transport == "tcp"
    assert tcp.gauge("scpi") == SocketInstrument(40005, "TCPIP::127.0.0.1::40005::SOCKET")
    assert tcp.faults == () and tcp.pid == 4242
    serial = Endpoints.from_line(SERIAL_LINES)
    assert serial.controller.link(timeout_s=0.5) == ModbusLink.rtu("/dev/pts/4", 1, 0.5, 19200, "N")
    assert serial.gauge("gcl").resource == "ASRL/dev/pts/6::INSTR"
    wired = Endpoints.from_line(WIRED_LINES)
    assert isinstance(wired.controller, SerialEndpoint) and wired.controller.port is None
    with pytest.raises(ValueError, match="/dev/ttyS1"):
        wired.controller.link()  # the client's end is the user's cable, not known here
    with pytest.raises(ValueError, match="no tilt gauge"):
        tcp.gauge("tilt")


def test_a_started_emulator_and_its_rig_file_give_the_resources_connect_opens():
    config = load_rig("emulated-lumbar")
    endpoints = Endpoints.from_line(TCP_LINE)
    res = RigResources.of(config, endpoints)
    c = config.controller
    assert res.controller == ModbusLink.tcp("127.0.0.1", 40001, c.unit_id, c.timeout_s)
    assert res.stimulus == ModbusLink.tcp("127.0.0.1", 40002, config.stimulus.unit_id, config.stimulus.timeout_s)
    assert res.gauge == VisaInstrument("TCPIP::127.0.0.1::40005::SOCKET", "scpi", config.gauge.timeout_s)
    assert res.patient_simulator == ModbusLink.tcp("127.0.0.1", 40003)
    assert res.safety is None and res.heartbeat is None
    # the same emulator, attached through a rig file that names its addresses: the same resources
    attached = attached_rig(config, endpoints)
    assert attached.emulated.attach and attached.table.serial == "EMU-LUMB-0003"
    assert RigResources.of(attached) == res


def test_a_serial_emulator_gives_an_rtu_controller_and_an_asrl_gauge():
    config = load_rig("emulated-serial")
    res = RigResources.of(config, Endpoints.from_line(SERIAL_LINES))
    assert res.controller == ModbusLink.rtu("/dev/pts/4", config.controller.unit_id, config.controller.timeout_s,
                                            19200, "N")
    assert res.gauge.resource == "ASRL/dev/pts/6::INSTR" and res.gauge.dialect == "gcl"


def test_routed_safety_and_heartbeat_links_keep_the_controllers_settings():
    data = yaml.safe_load((RIGS_DIR / "bench-example.yaml").read_text())
    data["controller"].update(safety_link="10.0.0.7:5020", heartbeat_link="10.0.0.7:5021", timeout_s=0.5)
    res = RigResources.of(rig_from_dict(data, "bench.yaml"))
    assert res.safety == res.controller.at("10.0.0.7", 5020) and res.safety.timeout_s == 0.5
    assert res.heartbeat == ModbusLink.tcp("10.0.0.7", 5021, 1, 0.5)


def test_an_attached_emulators_record_says_what_its_rig_file_says():
    data = yaml.safe_load((RIGS_DIR / "emulated-lumbar.yaml").read_text())
    data["emulated"].update(attach=True, patient_simulator="127.0.0.1:40003")
    data["controller"].update(host="127.0.0.1", port=40001)
    data["stimulus"].update(host="127.0.0.1", port=40002)
    data["gauge"]["resource"] = "TCPIP::127.0.0.1::40005::SOCKET"
    config = rig_from_dict(data, "attached.yaml")
    record = Endpoints.attached_to(config).to_json()
    assert record == {"attached": True, "seed": 1, "time_scale": 10.0,
                      "controller": {"transport": "tcp", "host": "127.0.0.1", "port": 40001},
                      "stimulus": {"host": "127.0.0.1", "port": 40002},
                      "patient_simulator": {"host": "127.0.0.1", "port": 40003},
                      "gauges": {"scpi": {"resource": "TCPIP::127.0.0.1::40005::SOCKET"}}}
    assert RigResources.of(config).patient_simulator == ModbusLink.tcp("127.0.0.1", 40003)
    assert json.loads(json.dumps(record)) == record
