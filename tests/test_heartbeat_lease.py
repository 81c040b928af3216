"""The heartbeat's lease: beats only while the runner makes progress (drivers/lease.py).

Behaviour, not timing (the bounds are the benchmark's and the link-fault matrix's): a
runner whose main thread is blocked, stopped (SIGSTOP) or has dropped the lease lets the
controller's watchdog release a table under force; a runner that computes, or waits a
bounded time through the lease's own sleep, does not; and a table confirmed at rest keeps
its watchdog fed however long the runner is blocked, until the next START.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from drivers import lease
from drivers.controller import TractionController
from drivers.tcm1 import FaultCode, Phase
from tests.emulated import wait_for
from tests.heartbeat_runner import alive, finish, held, start

HOLD_N = 150.0
PERIODS = 4  # watchdog periods the runner is blocked / waits

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def held_table():
    with held("emulated-lumbar", HOLD_N) as table:
        yield table


def _period_wall(rig, spec) -> float:
    return spec.plan.watchdog_s / rig.time_scale


def _released(rig, residual: float, timeout_s: float):
    return wait_for(lambda: (s := rig.controller.status()).force_n < residual and s, timeout_s,
                    "the force below the residual")


def test_a_blocked_main_thread_under_force_lets_the_watchdog_release(held_table):
    """A stuck call (here a plain sleep: blocked in the kernel, as a deadlock or a read
    without a timeout is) renews nothing: the beats stop and the watchdog trips."""
    rig, keeper, spec = held_table
    residual = rig.controller.residual_force()
    time.sleep(PERIODS * _period_wall(rig, spec))
    st = rig.controller.status()
    assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG, st
    _released(rig, residual, 3.0 / rig.time_scale + 5.0)
    stats = keeper.refresh()
    assert stats["lease_lapses"] >= 1 and stats["errors"] == 0


def test_a_bounded_wait_through_the_lease_is_progress(held_table):
    rig, keeper, spec = held_table
    lease.sleep(PERIODS * _period_wall(rig, spec))
    st = rig.controller.status()
    assert not st.watchdog_tripped and st.running and st.force_n > 0.9 * HOLD_N, st


def test_at_rest_the_lease_is_open_ended_until_the_next_start(held_table):
    rig, keeper, spec = held_table
    ctrl = rig.controller
    residual = ctrl.residual_force()
    ctrl.stop()
    st = wait_for(lambda: (s := ctrl.status()).phase is Phase.IDLE and s.force_n <= residual and s, 10.0,
                  "the table at rest")
    assert keeper.at_rest(st, residual)
    time.sleep(PERIODS * _period_wall(rig, spec))  # a long report, a slow fixture: the table is at rest
    st = ctrl.status()
    assert st.enabled and not st.watchdog_tripped, st
    ctrl.start()  # the lease is short again before the table can pull
    assert keeper.lease.mode == lease.Lease.ACTIVE
    assert not keeper.at_rest(st, residual)  # that status was asked before the START
    time.sleep(PERIODS * _period_wall(rig, spec))
    assert ctrl.status().watchdog_tripped


def test_drop_ends_the_beats_at_once_and_nothing_renews_them(held_table):
    rig, keeper, spec = held_table
    before = keeper.refresh()["beats"]
    keeper.drop()
    end = time.perf_counter() + PERIODS * _period_wall(rig, spec)
    while time.perf_counter() < end:  # busy with transactions: still no beat
        rig.controller.status()
    st = rig.controller.status()
    assert st.watchdog_tripped, st
    assert keeper.refresh()["beats"] <= before + 1  # at most the one already on its way


@pytest.mark.parametrize("freeze", [signal.SIGSTOP, signal.SIGUSR1], ids=["SIGSTOP", "deadlock"])
def test_a_frozen_runner_releases_the_table(freeze, tmp_path):
    """A stopped runner (SIGSTOP, a debugger) or a deadlocked one (the runner takes a lock
    twice on SIGUSR1) still exists; its beat process lives on and stops beating because the
    lease runs out, so the watchdog releases the table."""
    proc, info = start("emulated-lumbar", HOLD_N, tmp_path / "runner.log")
    try:
        ep = info["emulator"]["controller"]
        with TractionController(host=ep["host"], port=ep["port"], timeout_s=1.0, name="observer") as ctrl:
            residual = ctrl.residual_force()
            k, wd = info["time_scale"], info["watchdog_s"]
            time.sleep(PERIODS * wd / k)  # the runner waits, renewing its lease: the table keeps pulling
            st = ctrl.status()
            assert st.force_n > 0.9 * HOLD_N and not st.watchdog_tripped, st
            stopped = time.perf_counter_ns()
            os.kill(proc.pid, freeze)
            st = wait_for(lambda: (s := ctrl.status()).force_n < residual and s, 2 * wd / k + 5.0,
                          f"the force below the residual after {freeze.name}")
            took = (time.perf_counter_ns() - stopped) / 1e9
            assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG, st
            assert alive(info["heartbeat_pid"])  # it lives: the lease stopped it, not a death
            print(f"{freeze.name} -> force below the residual in {took:.3f} s wall ({took * k:.2f} s table)")
    finally:
        finish(proc, info)
