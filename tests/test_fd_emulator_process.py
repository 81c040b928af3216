"""`rig emulate --kind flexion-distraction` in its own process, driven through the real
drivers (FDC-1 controller, SIO-1 with the obstacle slide, the tilt inclinometer, both
gauge roles) over the real Modbus and socket servers."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from drivers.fdc1 import DeviceKind, FaultCode, Phase
from drivers.flexion_controller import FlexionController
from drivers.gauge import open_gauge
from drivers.inclinometer import open_inclinometer
from drivers.stimulus import StimulusModule
from drivers.tcm1 import StimulusCoil
from rigs.rig import EmulatorProcess

K = 5.0  # table seconds per wall second


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    events = tmp_path_factory.mktemp("fd") / "events.jsonl"
    emu = EmulatorProcess.start("flexion-distraction", seed=5, time_scale=K, events_path=str(events),
                                extra=["--obstacle-angle", "12.0"])
    ep = emu.endpoints
    ctrl = FlexionController.on(ep.controller.link(timeout_s=2)).connect()
    sio = StimulusModule.on(ep.stimulus.link(), obstacle_slide=True).connect()
    # every instrument opened once and closed together at the end: closing one VISA
    # instrument closes the others opened in this process (drivers/gauge/link.py closes
    # the shared pyvisa ResourceManager)
    tilt = open_inclinometer(ep.inclinometer.resource, "tilt", time_scale=K)
    gauge = open_gauge(ep.gauge("scpi").resource, "scpi", time_scale=K)
    cell = open_gauge(ep.obstacle_gauges["gcl"].resource, "gcl", time_scale=K)
    try:
        yield emu, ctrl, sio, tilt, gauge, cell, events
    finally:
        ctrl.make_safe()
        sio.release_all()
        for closable in (tilt, gauge, cell, sio, ctrl):
            closable.close()
        emu.stop()


def wait_for(ctrl, predicate, table_s: float, what: str):
    deadline = time.perf_counter() + table_s / K + 5.0
    while time.perf_counter() < deadline:
        status = ctrl.status()
        if predicate(status):
            return status
        time.sleep(0.005)
    raise AssertionError(f"{what} not seen within {table_s} table s")


def test_endpoints_name_every_instrument(bench):
    emu, *_ = bench
    line = json.loads(emu.endpoints.line())
    assert line["kind"] == "flexion-distraction"
    assert list(line)[-3:] == ["gauges", "inclinometer", "obstacle_gauges"]
    assert set(line["gauges"]) == set(line["obstacle_gauges"]) == {"gcl", "scpi"}
    assert line["inclinometer"]["resource"].startswith("TCPIP::127.0.0.1::")


def test_identity_is_fdc1(bench):
    _, ctrl, *_ = bench
    ident = ctrl.identity()
    assert ident.kind is DeviceKind.FLEXION_DISTRACTION and ident.serial == "EMU-FD-0005"
    assert (ident.rated_depth_deg, ident.rated_lateral_deg, ident.rated_speed_deg_s) == (25.0, 15.0, 20.0)
    assert (ident.accel_deg_s2, ident.obstruction_force_n, ident.backoff_deg) == (40.0, 80.0, 2.0)


def test_a_cycle_measured_by_the_inclinometer_with_the_distraction_held(bench):
    emu, ctrl, sio, tilt, gauge, cell, _ = bench
    ctrl.set_mode("flexion")
    ctrl.set_depths(flexion_deg=15.0)
    ctrl.set_speed(20.0)
    ctrl.set_times(pause_s=1.0, rest_s=0.5)
    ctrl.set_cycles(1)
    ctrl.set_distraction_rate(200.0)
    ctrl.set_distraction_force(60.0)
    ctrl.enable()
    tilt.start_stream(200.0)
    ctrl.start()
    wait_for(ctrl, lambda s: s.phase is Phase.PAUSE_AT_DEPTH, 5.0, "the pause at depth")
    force = gauge.read_current()  # the distraction held while the section is at depth
    status = wait_for(ctrl, lambda s: s.phase is Phase.IDLE and s.cycle_count == 1, 10.0, "the end")
    trace = tilt.stop_stream()
    assert status.at_neutral and status.brake_engaged and status.fault_code is FaultCode.NONE
    x = trace.x_deg
    assert np.nanmax(x) == pytest.approx(15.0, abs=0.5)
    assert abs(x[-1]) < 0.5
    out = (x > 3.0) & (x < 12.0) & (np.gradient(x) > 0)
    slope = np.polyfit(trace.t[out], x[out], 1)[0]
    assert slope == pytest.approx(20.0, rel=0.05)
    assert force == pytest.approx(60.0, abs=5.0)


def test_obstacle_stops_backs_off_and_its_gauge_reads_the_press(bench):
    emu, ctrl, sio, tilt, gauge, cell, events = bench
    try:
        ctrl.set_depths(flexion_deg=20.0)
        ctrl.set_distraction_force(0.0)
        sio.press(StimulusCoil.OBSTACLE)
        ctrl.start()
        pressed = []  # the obstacle's gauge through the press and the back-off
        deadline = time.perf_counter() + 5.0 / K + 5.0
        while ctrl.status().phase is not Phase.EMERGENCY_STOPPED:
            assert time.perf_counter() < deadline, "no obstruction"
            pressed.append(cell.read_current())
        backed_off = time.perf_counter() + 1.5 / K
        while time.perf_counter() < backed_off:
            pressed.append(cell.read_current())
        assert 60.0 < max(pressed) < 130.0  # it pressed past the threshold (80 N), and not far
        status = ctrl.status()
        assert status.obstruction_tripped and status.fault_code is FaultCode.OBSTRUCTION
        assert status.brake_engaged
        assert status.flexion_deg == pytest.approx(12.0, abs=0.3)  # backed off to where it met the pad
        assert abs(cell.read_current()) < 10.0
    finally:
        sio.release(StimulusCoil.OBSTACLE)
    names = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert "emergency:obstruction" in names and any(n.startswith("truth:backed-off") for n in names)
    ctrl.reset()
    ctrl.stop()  # idle off neutral: back to neutral at SPEED
    status = wait_for(ctrl, lambda s: s.phase is Phase.IDLE and s.at_neutral, 5.0, "neutral")
    assert tilt.read().x_deg == pytest.approx(0.0, abs=0.5)


def test_estop_button_stops_and_latches(bench):
    _, ctrl, sio, tilt, *_ = bench
    ctrl.set_depths(flexion_deg=20.0)
    ctrl.set_cycles(0)
    ctrl.start()
    wait_for(ctrl, lambda s: s.phase is Phase.MOVING_OUT and s.flexion_deg > 5.0, 5.0, "moving out")
    sio.press(StimulusCoil.ESTOP_BUTTON)
    time.sleep(0.5 / K)
    first = tilt.read().x_deg
    time.sleep(1.0 / K)
    status = ctrl.status()
    assert status.phase is Phase.EMERGENCY_STOPPED and status.estop_latched and status.brake_engaged
    assert tilt.read().x_deg == pytest.approx(first, abs=0.02)  # stays where it stopped
    sio.release(StimulusCoil.ESTOP_BUTTON)
    ctrl.reset()
    assert ctrl.status().phase is Phase.IDLE


def test_rtu_over_serial_lines():
    emu = EmulatorProcess.start("flexion-distraction", seed=6, time_scale=1.0, extra=["--serial-lines"])
    try:
        ctrl = FlexionController.on(emu.endpoints.controller.link(timeout_s=2)).connect()
        try:
            assert ctrl.identity().kind is DeviceKind.FLEXION_DISTRACTION
            assert ctrl.status().ready
        finally:
            ctrl.close()
    finally:
        emu.stop()


def test_obstacle_angle_only_for_flexion_distraction(tmp_path):
    import subprocess
    import sys

    from rigs.rig import PROJECT_ROOT

    result = subprocess.run([sys.executable, "-m", "rigcli", "emulate", "--kind", "lumbar", "--obstacle-angle", "10"],
                            capture_output=True, text=True, cwd=str(PROJECT_ROOT), timeout=60)
    assert result.returncode != 0
    assert "--obstacle-angle" in result.stderr and "flexion-distraction" in result.stderr
