"""The heartbeat process: beats that the test process cannot starve, and that stop the
moment the test process dies.

Behaviour, not timing: a main thread that holds the GIL in a pure-Python loop for
several watchdog periods does not trip the watchdog (a heartbeat thread would have
starved), and a runner killed with SIGKILL takes its beat process with it, so the
watchdog trips and the force falls below the residual. Both on Modbus TCP and on
Modbus RTU, where the beat process and the test process share the one line.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from drivers.controller import TractionController
from drivers.tcm1 import FaultCode
from drivers.watchdog import HeartbeatError, HeartbeatKeeper
from rigs.config import load_rig
from rigs.rig import open_rig
from tests.emulated import wait_for
from tests.heartbeat_runner import alive, finish, held, start

RIGS = {"tcp": "emulated-lumbar", "rtu": "emulated-serial"}
HOLD_N = 150.0
BUSY_PERIODS = 4  # watchdog periods the main thread keeps the GIL

pytestmark = [pytest.mark.timeout(120)]


def _busy(seconds: float) -> int:
    """A pure-Python loop that keeps the GIL for `seconds` (no thread switch is asked for)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(10 * seconds + 1.0)
    try:
        n = 0
        end = time.perf_counter_ns() + int(seconds * 1e9)
        while time.perf_counter_ns() < end:
            n += 1
        return n
    finally:
        sys.setswitchinterval(previous)


@pytest.fixture(params=["tcp", pytest.param("rtu", marks=pytest.mark.slow)])
def held_table(request):
    """An open emulated rig whose table holds HOLD_N, its watchdog fed by a keeper."""
    with held(RIGS[request.param], HOLD_N) as table:
        yield table


def test_a_main_thread_holding_the_gil_does_not_starve_the_beats(held_table):
    rig, keeper, spec = held_table
    period_wall_s = spec.plan.watchdog_s / rig.time_scale
    before = keeper.refresh()["beats"]
    _busy(BUSY_PERIODS * period_wall_s)
    st = rig.controller.status()
    assert not st.watchdog_tripped and st.fault_code is FaultCode.NONE, st
    assert st.running and st.force_n > 0.9 * HOLD_N  # still pulling: nothing released it
    # the beats went on while this process could not run a line of Python
    assert keeper.refresh()["beats"] >= before + BUSY_PERIODS * 3
    assert keeper.errors == 0


def test_test_traffic_and_beats_share_the_link(held_table):
    """Status reads back to back while the beats go on: on RTU both masters take turns on
    the one line (a whole transaction each, under the line's flock), so neither side ever
    reads a frame meant for the other."""
    rig, keeper, spec = held_table
    before = keeper.refresh()["beats"]
    end = time.perf_counter_ns() + int(4 * spec.plan.watchdog_s / rig.time_scale * 1e9)
    reads = 0
    while time.perf_counter_ns() < end:
        st = rig.controller.status()
        assert st.running and not st.watchdog_tripped, st
        reads += 1
    stats = keeper.refresh()
    assert stats["errors"] == 0, stats["last_error"]
    assert stats["beats"] >= before + 12 and reads > 20


def test_pause_stops_the_beats_and_resume_restarts_them(held_table):
    rig, keeper, spec = held_table
    ctrl = rig.controller
    last = keeper.pause()
    assert keeper.paused and last > 0
    beats = keeper.refresh()["beats"]
    st = wait_for(lambda: (s := ctrl.status()).watchdog_tripped and s,
                  2 * spec.plan.watchdog_s / rig.time_scale + 5.0, "the watchdog trip after pause()")
    assert st.fault_code is FaultCode.WATCHDOG
    assert keeper.refresh()["beats"] == beats  # not one beat while paused
    keeper.resume()
    assert not keeper.paused
    wait_for(lambda: keeper.refresh()["beats"] > beats + 2, 5.0, "beats after resume()")


def test_the_beat_process_ends_when_its_parent_lets_go():
    """EOF on the control socket is the parent's death as the beat process sees it."""
    rig = open_rig(load_rig(RIGS["tcp"]))
    keeper = HeartbeatKeeper(rig.controller, 3.0, rig.time_scale)
    try:
        keeper.arm()
        pid = keeper.pid
        assert alive(pid)
        keeper._control.close()  # what the kernel does for a parent killed outright
        keeper._control = None
        wait_for(lambda: not alive(pid), 5.0, "the beat process exiting on EOF")
    finally:
        keeper.stop()
        rig.close()


def test_a_beat_process_that_cannot_reach_the_controller_is_one_line():
    dead = TractionController(host="127.0.0.1", port=1, timeout_s=0.5)  # nothing listens on port 1
    keeper = HeartbeatKeeper(dead, 3.0, 10.0)
    with pytest.raises(HeartbeatError) as err:
        keeper._spawn()
    text = str(err.value)
    assert "heartbeat process did not start" in text and "cannot connect" in text and "\n" not in text
    assert keeper.process.wait(5.0) == 2


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_sigkill_of_the_runner_ends_the_beats_and_the_watchdog_releases(transport, tmp_path):
    proc, info = start(RIGS[transport], HOLD_N, tmp_path / "runner.log")
    try:
        assert alive(info["heartbeat_pid"])
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10.0) == -signal.SIGKILL
        # the beat process noticed at once: it is gone, and nobody feeds the watchdog
        wait_for(lambda: not alive(info["heartbeat_pid"]), 5.0, "the beat process ending with its parent")
        ep = info["emulator"]["controller"]
        if ep["transport"] == "rtu":  # the line is free again: observe over it
            ctrl = TractionController(transport="rtu", port=ep["port"], parity=ep["parity"], timeout_s=1.0,
                                      name="observer")
        else:
            ctrl = TractionController(host=ep["host"], port=ep["port"], timeout_s=1.0, name="observer")
        with ctrl:
            k, wd = info["time_scale"], info["watchdog_s"]
            st = wait_for(lambda: (s := ctrl.status()).watchdog_tripped and s, 2 * wd / k + 5.0, "the watchdog trip")
            assert st.fault_code is FaultCode.WATCHDOG
            residual = ctrl.residual_force()
            wait_for(lambda: ctrl.status().force_n < residual, 3.0 / k + 5.0, "the force below the residual")
    finally:
        finish(proc, info)
