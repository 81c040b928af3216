"""Serial transports end to end: `rig emulate --serial-lines` prints the ends of the
null-modems it made, the emulated-serial rig file validates (and says which key is
wrong when it does not), open_rig drives an RTU controller and an ASRL gauge with
make_safe on the single link, and `rig run` goes through the suites over serial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drivers.controller import TractionController, Transport
from drivers.errors import ConfigError
from drivers.gauge import open_gauge
from drivers.tcm1 import DeviceKind
from reports.record import run_dirs
from reports.verdicts import summarise
from rigcli.main import main as rig_main
from rigs.config import RIGS_DIR, load_rig, rig_from_dict
from rigs.emulator.nullmodem import PtyLink
from rigs.rig import EmulatorProcess, open_rig
from tests.emulated import wait_for

ROOT = Path(__file__).resolve().parent.parent
SERIAL_RIG = RIGS_DIR / "emulated-serial.yaml"


def pty_keeps_parity() -> bool:
    import termios

    import serial

    with PtyLink() as link:
        try:
            with serial.Serial(link.end_a, 19200, parity="E") as line:
                return bool(termios.tcgetattr(line.fd)[2] & termios.PARENB)
        except Exception:  # noqa: BLE001 — refused (termios.error / SerialException)
            return False


# -- rig emulate --serial-lines --------------------------------------------------------------

@pytest.mark.timeout(60)
def test_emulate_serial_lines_prints_the_ends_to_open():
    emu = EmulatorProcess.start("lumbar", seed=2, time_scale=5.0, extra=["--serial-lines"])
    try:
        ep = emu.endpoints
        c, gcl = ep.controller, ep.gauge("gcl")
        assert (c.transport, c.baudrate, c.parity, c.unit_id) == ("rtu", 19200, "N", 1)
        assert gcl.resource == f"ASRL{gcl.port}::INSTR" and gcl.baudrate == 115200
        for line in (c, gcl):
            assert line.port.startswith("/dev/pts/") and line.emulator_port.startswith("/dev/pts/")
            assert line.port != line.emulator_port and os.path.exists(line.port)
        assert ep.gauge("scpi").resource.startswith("TCPIP::127.0.0.1::")  # the rest stays on TCP
        assert ep.stimulus.host == "127.0.0.1"
        with TractionController.on(c.link()) as ctrl:
            assert ctrl.identity().kind is DeviceKind.LUMBAR
        with open_gauge(gcl.resource, "gcl", time_scale=5.0) as gauge:
            assert abs(gauge.read()) < 5.0  # an idle table
            trace = gauge.stream(n_samples=20, rate_hz=125)
            assert len(trace) == 20
    finally:
        emu.process.send_signal(signal.SIGTERM)
        code = emu.process.wait(10)
        emu.stop()
    assert code == 0
    assert not os.path.exists(c.port) and not os.path.exists(gcl.port)  # the cables went with it


@pytest.mark.timeout(60)
def test_emulate_on_lines_the_user_wired():
    """--controller-rtu / --gauge-serial serve on a given device; the client opens the far end."""
    with PtyLink() as ctrl_line, PtyLink() as gauge_line:
        emu = EmulatorProcess.start("cervical", seed=3, time_scale=1.0, extra=[
            "--controller-rtu", ctrl_line.end_a, "--rtu-parity", "N", "--gauge-serial", gauge_line.end_a])
        try:
            c, gcl = emu.endpoints.controller, emu.endpoints.gauge("gcl")
            assert c.emulator_port == ctrl_line.end_a and gcl.emulator_port == gauge_line.end_a
            assert c.port is None and gcl.resource is None  # the far end is the user's cable
            printed = emu.endpoints.to_json()
            assert "port" not in printed["controller"] and "resource" not in printed["gauges"]["gcl"]
            with TractionController(transport="rtu", port=ctrl_line.end_b, parity="N") as ctrl:
                assert ctrl.identity().kind is DeviceKind.CERVICAL
            with open_gauge(f"ASRL{gauge_line.end_b}::INSTR", "gcl") as gauge:
                assert abs(gauge.read()) < 5.0
        finally:
            emu.stop()


@pytest.mark.timeout(60)
def test_even_parity_over_ptys_is_refused_in_one_line():
    """A pty refuses PARENB here and silently drops it elsewhere: either way not E."""
    if pty_keeps_parity():
        pytest.skip("this kernel's ptys keep PARENB: E over a pty is accepted here")
    proc = subprocess.run([sys.executable, "-m", "rigcli", "emulate", "--serial-lines", "--rtu-parity", "E"],
                          cwd=ROOT, capture_output=True, text=True, timeout=50, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and proc.stdout == ""
    err = proc.stderr.strip()
    assert "\n" not in err and err.startswith("rig: /dev/pts/") and "use parity N" in err


def test_emulate_option_conflicts_are_one_line(capsys):
    assert rig_main(["emulate", "--serial-lines", "--controller-rtu", "/dev/ttyUSB1"]) == 2
    assert "--serial-lines makes its own lines" in capsys.readouterr().err
    assert rig_main(["emulate", "--rtu-parity", "N"]) == 2
    assert "--rtu-parity only applies" in capsys.readouterr().err


# -- the rig file ------------------------------------------------------------------------------

def serial_rig_data() -> dict:
    return yaml.safe_load(SERIAL_RIG.read_text())


def test_emulated_serial_rig_file():
    config = load_rig("emulated-serial")
    assert config.emulated.serial_lines and config.controller.transport == "rtu"
    assert config.controller.parity == "N" and config.gauge.dialect == "gcl" and config.table.kind == "lumbar"


@pytest.mark.parametrize("change, key", [
    (lambda d: d["gauge"].update(dialect="scpi"), "gauge.dialect"),
    (lambda d: d["controller"].update(transport="tcp"), "controller.transport"),
    (lambda d: d["emulated"].update(serial_lines=False), "controller.transport"),
    (lambda d: d["gauge"].update(resource="ASRL/dev/ttyUSB0::INSTR"), "emulated.serial_lines"),
    (lambda d: d["emulated"].update(serial_lines="maybe"), "emulated.serial_lines"),
])
def test_serial_rig_mistakes_name_file_and_key(change, key):
    data = serial_rig_data()
    change(data)
    with pytest.raises(ConfigError) as err:
        rig_from_dict(data, "bench.yaml")
    text = str(err.value)
    assert "\n" not in text and text.startswith("bench.yaml: ") and key in text


# -- open_rig ----------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_open_rig_over_serial_and_make_safe_on_the_single_link():
    with open_rig(load_rig("emulated-serial")) as rig:
        assert rig.controller.transport is Transport.RTU and rig.safety is None
        assert rig.controller.address.startswith(f"modbus-rtu://{rig.emulator_endpoints.controller.port} ")
        assert rig.gauge.resource == rig.emulator_endpoints.gauge("gcl").resource
        rig.controller.set_target_force(100.0)
        rig.controller.enable()
        assert rig.make_safe() == []
        status = wait_for(lambda: (s := rig.controller.status()).estop_latched and not s.enabled and s,
                          10.0, "ESTOP latched and drive off")
        assert status.force_n < 15.0
        assert abs(rig.gauge.read()) < 15.0
        emulator = rig.emulator.process
    assert emulator.poll() is not None  # closing the rig stopped its emulator


# -- rig run -----------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_rig_run_over_serial(tmp_path):
    """A few fast requirements through the real CLI. The exit status is 1 by design: the
    requirements left out by -k are NOT RUN, which makes the run INCONCLUSIVE."""
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "rigcli", "run", "--rig", "emulated-serial", "-k",
         "start_refused or setpoint or limit_locked", "--no-report", "--run-dir", str(runs)],
        cwd=ROOT, capture_output=True, text=True, timeout=110, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    run_dir = next(run_dirs(runs))
    summary = summarise(run_dir)
    verdicts = {r.id: r.verdict for r in summary.results}
    ran = {"IL-START", "IL-SETPOINT", "IL-LIMIT-LOCK"}
    assert {verdicts[r] for r in ran} == {"PASS"}, out[-3000:]
    assert {v for r, v in verdicts.items() if r not in ran} == {"NOT RUN"}
    assert not summary.errored_tests and summary.complete
    assert proc.returncode == 1 and "overall: INCONCLUSIVE" in out
    start = json.loads((run_dir / "record.jsonl").read_text().splitlines()[0])
    assert start["emulator"]["controller"]["transport"] == "rtu"
    assert start["gauge"]["resource"].startswith("ASRL/dev/pts/")
