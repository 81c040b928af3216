"""Defence in depth (rigs/safe_state.py): a release counts only when a reading confirms it,
the beats stop the moment a safe-state command fails, the stimulus module's paths follow in
order, and a table nothing can confirm is one loud line with the last force seen."""

from __future__ import annotations

import dataclasses

import pytest

from drivers.controller import TractionController
from drivers.tcm1 import Phase
from rigs.safe_state import SafeState, release
from tests.emulated import wait_for
from tests.heartbeat_runner import held

HOLD_N = 150.0

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def held_table():
    with held("emulated-lumbar", HOLD_N) as table:
        yield table


def _dead_link(name: str) -> TractionController:
    """A controller link whose every exchange fails at once (nothing listens on port 1)."""
    return TractionController(host="127.0.0.1", port=1, timeout_s=0.2, name=name)


def _windows(rig, spec, keeper) -> dict:
    k = rig.time_scale
    return {"residual_n": spec.residual_force_n, "release_wall_s": 3.0 / k,
            "watchdog_wall_s": spec.plan.watchdog_s / k + keeper.lease_length_wall_s}


def test_a_taken_release_is_confirmed_by_the_controller_reading(held_table):
    rig, keeper, spec = held_table
    state = release(rig, stop_beats=keeper.drop, **_windows(rig, spec, keeper))
    assert state.confirmed and state.problems == [] and not state.beats_stopped
    assert state.steps == ["controller ESTOP + ENABLE 0"]
    assert state.last.force_n <= spec.residual_force_n and "controller" in state.last.by
    # released is not yet idle (the controller may still be in its release phase): at rest once idle
    st = wait_for(lambda: (s := rig.controller.status()).phase is Phase.IDLE and s, 5.0, "idle after the release")
    assert keeper.at_rest(st, spec.residual_force_n)


def test_dead_controller_links_stop_the_beats_and_the_gauge_confirms_the_watchdog_release(held_table):
    rig, keeper, spec = held_table
    live = rig.controller
    dead = dataclasses.replace(rig, controller=_dead_link("test link"), safety=_dead_link("safety link"),
                               stimulus=None)
    state = release(dead, stop_beats=keeper.drop, **_windows(rig, spec, keeper))
    assert state.beats_stopped and keeper.dropped
    assert state.steps[:2] == ["controller ESTOP + ENABLE 0", "heartbeat stopped (watchdog)"]
    assert any("safety link" in p for p in state.problems) and any("test link" in p for p in state.problems)
    assert state.confirmed, state.loud_line("emulated-lumbar")
    assert "reference gauge" in state.last.by  # the controller could not be read: the gauge said so
    assert live.status().watchdog_tripped  # it was the watchdog that released the table


def test_a_dead_safety_link_still_stops_the_beats_and_is_named(held_table):
    """The test link takes the release, but a failed safe-state command ends the beats all
    the same, and the failure stays in the state (the plugin prints it: never silently)."""
    rig, keeper, spec = held_table
    half = dataclasses.replace(rig, safety=_dead_link("traction controller (safety link)"))
    state = release(half, stop_beats=keeper.drop, **_windows(rig, spec, keeper))
    assert state.confirmed and state.beats_stopped and keeper.dropped
    assert state.problems and all("safety link" in p for p in state.problems), state.problems
    st = wait_for(lambda: (s := rig.controller.status()).phase is Phase.IDLE and s, 5.0, "idle after the release")
    assert keeper.at_rest(st, spec.residual_force_n) and not keeper.dropped  # a confirmed rest re-arms


def test_a_table_nothing_can_confirm_is_one_loud_line_with_the_last_force(held_table):
    rig, keeper, spec = held_table
    before = rig.controller.status().force_n
    assert before > 0.9 * HOLD_N
    keeper.pause()
    blind = dataclasses.replace(rig, controller=_dead_link("test link"), safety=_dead_link("safety link"),
                                stimulus=None, gauge=None)
    state = SafeState(confirmed=False, residual_n=spec.residual_force_n)
    state = release(blind, residual_n=spec.residual_force_n, release_wall_s=0.05, watchdog_wall_s=0.0)
    assert not state.confirmed and state.last is None
    line = state.loud_line("emulated-lumbar")
    assert line.startswith("TABLE NOT CONFIRMED SAFE — emulated-lumbar") and "\n" not in line
    assert "no instrument could read the force" in line
    # with a reading before the links went: the loud line carries it
    seen = release(dataclasses.replace(blind, gauge=rig.gauge), residual_n=-1.0, release_wall_s=0.05)
    assert not seen.confirmed and "by reference gauge" in seen.loud_line("x")


def test_rig_run_reads_an_unconfirmed_release_from_the_record(tmp_path):
    """`rig run` exits 4 and repeats the line for any run whose record has the event: an
    xdist worker's own exit status never reaches it."""
    from reports.record import RunRecord
    from rigcli.run import not_confirmed_safe
    from reports.rundir import Event

    quiet = RunRecord.create(tmp_path, "quiet")
    quiet.event(Event.SAFE_STATE, reason="after test", confirmed=True)
    loud = RunRecord.create(tmp_path, "loud")
    loud.event(Event.TABLE_NOT_SAFE, reason="after test", line="TABLE NOT CONFIRMED SAFE — loud: …")
    assert not_confirmed_safe([quiet.dir]) == []
    assert not_confirmed_safe([quiet.dir, loud.dir]) == ["TABLE NOT CONFIRMED SAFE — loud: …"]
