"""Checks that need a person at the bench: the red EMERGENCY STOP pressed by hand, the
cord seen to slacken, the button twisted out before RESET.

The relay trials of test_emergency_release prove the controller's e-stop input; this
proves the button itself (switch, wiring, the latch a person twists out) on the daily
check of the Eltrac 471 manual: pull, press, the cord must slacken. The release is
measured with the reference gauge exactly as the relay trials measure it
(verification/release.py); only the trigger instant differs: a hand press has no
acknowledged write, so it is the instant the controller latched the e-stop, bracketed
by the last status read that did not show it and the first that did.

Skipped with the reason on CI, with --no-operator or without a controlling terminal
(fixtures/operator.py); a step nobody answers fails the test, and the bench fixture's
teardown releases the table as after any failure.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from drivers.controller import CommandRefused
from drivers.tcm1 import Phase
from verification.bench import POLL_WALL_S, BenchTimeout, Capture
from verification.measurement import Measurement
from verification.release import RELEASE_REQUIREMENTS, release_measurements, trial_trigger_force
from verification.status_watch import StatusWatch
from verification.steps import AFTER_RELEASE_S

pytestmark = [pytest.mark.protocol("TCM-1")]  # the traction suites (fixtures/plugin.py select_protocol)


REQUIREMENTS = (*RELEASE_REQUIREMENTS, "ER-LATCH")
PRE_TRIGGER_S = 1.0  # table seconds of the hold kept before the trigger; the rest of the wait is dropped


def _from(cap: Capture, start_s: float) -> Capture:
    keep = cap.t >= start_s
    out = Capture(cap.t[keep], cap.force[keep], cap.trace, cap.ref_ns)
    out.mapping_half_width_s = cap.mapping_half_width_s
    return out


def _reset_after_release(bench, operator) -> tuple[bool, int]:
    """RESET and ENABLE once the button is out; a button still in re-latches at RESET, so
    the person is asked once more before it counts as a table that cannot be reset."""
    for attempt in (1, 2):
        try:
            bench.prepare()
            return True, attempt
        except (CommandRefused, BenchTimeout):
            if attempt == 2 or not bench.ctrl.status().estop_latched:
                return False, attempt
            operator.done("ER-LATCH", "release-estop-again",
                          "The table still reports the EMERGENCY STOP after RESET: twist the red button "
                          "until it pops out fully.")
    return False, 2


@pytest.mark.operator(prompts=5)  # ready, press, cord, release (and once more)
@pytest.mark.requirement(*REQUIREMENTS)
def test_estop_button_pressed_by_hand(bench, spec, recorder, operator):
    em = spec.plan.emergency
    force = max(em.forces_n)
    reqs = {r: spec.requirement(r) for r in REQUIREMENTS}
    operator.done(RELEASE_REQUIREMENTS, "ready",
                  f"The table will pull {force:g} N and hold it; you will then be asked to press its red "
                  "EMERGENCY STOP button.\nStand within reach of the button, keep clear of the harness.")
    bench.configure(force, em.setup_ramp_n_s)
    bench.ctrl.start()
    bench.wait_phase(Phase.HOLD, force / em.setup_ramp_n_s + 10.0)
    # the latch between the last status read that did not show it and the first that did
    watch = StatusWatch(bench.ctrl, "estop_latched",
                        lambda st: f"e-stop reported by the controller (fault {st.fault_code.name})")
    limit = reqs["ER-RESIDUAL"].limits(residual=bench.residual_n, force=force)[1] or 3.0
    holder: list = []
    with bench.capture(holder):
        step = operator.await_action(RELEASE_REQUIREMENTS, "press-estop",
                                     f"PRESS the red EMERGENCY STOP button on the table now (it holds {force:g} N).",
                                     watch)
        said_done_ns = time.perf_counter_ns()
        if not watch.seen:  # pressed, says the person: the table gets the release time to notice
            watch.wait(limit / bench.k + 1.0, pause_s=POLL_WALL_S)
        _, released = bench.poll_until(bench.released, 2 * limit + 1.0)
        bench.sleep(AFTER_RELEASE_S)
    # pressed before the first read: after the prompt; never reported: between the prompt and
    # the person's done (the reads that never saw it bound nothing)
    latch = watch.bracket()
    trigger_ns = latch.midpoint_ns(watch.started_ns, said_done_ns)
    half_width = latch.half_width_s(watch.started_ns, said_done_ns)
    cap = _from(bench.to_table(holder[0], trigger_ns), -PRE_TRIGGER_S)
    at_trigger = trial_trigger_force(cap, half_width, bench.k)
    f0 = at_trigger.force_n
    seen_by = "controller" if latch.seen else "operator only (the table never reported it)"
    cond = {"trigger": "estop_button_by_hand", "phase": "hold", "force_n": force, "force_at_trigger_n": f0,
            "operator": step.operator, "trigger_seen_by": seen_by, "trigger_half_width_wall_s": half_width,
            "status_reads_before_the_latch": latch.clear_reads}
    how = ("trigger instant (e-stop latch between two status reads)" if latch.seen
           else "trigger instant (between the prompt and the operator's 'done')")
    for m in release_measurements(spec, bench, cap, at_trigger, half_width, f"e-stop button pressed by hand ({force:g} N)",
                                  cond, trigger=how):
        if not latch.seen:
            m.note = "the operator pressed the button; the controller never reported the e-stop"
        recorder.record(m)

    if released:
        # by eye, as the daily check asks: an observation, judged by the boolean rule (no
        # uncertainty); the gauge measurements above carry ER-RESIDUAL's limit
        slack = operator.confirm("ER-RESIDUAL", "cord-slack",
                                 "Look at the traction cord: has it gone slack (no pull left on the harness)? [y/n]")
        recorder.record(Measurement(
            "cord slack after the e-stop (operator's observation)",
            reqs["ER-RESIDUAL"].model_copy(update={"decision_rule": "boolean"}), slack,
            conditions={"operator": operator.name, "answer": "y" if slack else "n",
                        "gauge_force_after_release_n": float(np.mean(cap.force[-10:])) if len(cap.force) else None},
            note="observed by the operator; decision rule boolean (an observation carries no uncertainty)"))
    else:
        bench.make_safe()  # a table that did not release on its own: nothing left to observe

    latched_held = bench.ctrl.status().estop_latched
    operator.done("ER-LATCH", "release-estop",
                  "Twist the red EMERGENCY STOP button to release it (it pops out). Do not press anything else.")
    latched_out = bench.ctrl.status().estop_latched
    refused = bench.start_refused()
    if not refused:
        bench.make_safe()
    reset_ok, attempts = _reset_after_release(bench, operator)
    recorder.record(Measurement(
        "e-stop button by hand: latched until RESET, restart refused, RESET accepted once released",
        reqs["ER-LATCH"], bool(latched_held and latched_out and refused and reset_ok),
        conditions={"latched_while_held": latched_held, "latched_after_release": latched_out,
                    "restart_refused": refused, "reset_accepted": reset_ok, "release_prompts": attempts,
                    "operator": operator.name},
        note="" if reset_ok else "the table could not be brought back to a known state"))
