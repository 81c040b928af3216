"""Emergency release: every trigger, in every treatment phase, at several forces,
repeated N times (N from the specification). The verdict is on the worst trial.

Triggers: the ESTOP coil, the e-stop button, the patient switch pressed, the patient
switch unplugged (through the stimulus module), communication loss (the watchdog)
and a mains cut. Measured with the reference gauge, in table seconds from the trigger:
trigger -> no further force increase, -> 50 % of the force at the trigger, -> below
the residual force, the 90 -> 10 % fall time (a snap is a hazard too), and that a
restart is refused until RESET.
"""

from __future__ import annotations

import allure
import pytest

from verification.measurement import Measurement, Precondition
from verification.release import RISE_KEY, release_measurements
from verification.spec import EMERGENCY_TRIGGERS
from verification.emergency import (REQUIREMENTS, WATCHDOG_REQUIREMENT, run_trial, trigger_too_loose, watchdog_measurement,
                                    with_attempts, worst_of_trials)

pytestmark = [pytest.mark.protocol("TCM-1")]  # the traction suites (fixtures/plugin.py select_protocol)


@pytest.mark.requirement(*REQUIREMENTS, WATCHDOG_REQUIREMENT)
@pytest.mark.parametrize("trigger", EMERGENCY_TRIGGERS)
def test_emergency_release(bench, spec, recorder, trigger, profile):
    em = spec.plan.emergency
    if trigger not in em.triggers:
        pytest.skip(f"trigger {trigger} is not in specification {spec.name}'s plan")
    trials = em.trial_plan(profile)
    reqs = {r: spec.requirement(r) for r in REQUIREMENTS}
    # one list per quantity verified: a requirement's own, and ER-NORISE's rise
    per_req: dict[tuple[str, str | None], list[Measurement]] = {(r, None): [] for r in REQUIREMENTS}
    per_req[("ER-NORISE", RISE_KEY)] = []
    if trigger == "watchdog":
        reqs[WATCHDOG_REQUIREMENT] = spec.requirement(WATCHDOG_REQUIREMENT)
        per_req[(WATCHDOG_REQUIREMENT, None)] = []
    for i, (phase, force) in enumerate(trials):
        def once():
            bench.context(requirement=None, trigger=trigger, phase=phase, force_n=force, trial=i + 1, trials=len(trials))
            with allure.step(f"trial {i + 1}: {trigger} during {phase} at {force:g} N"):
                return run_trial(bench, spec, trigger, phase, force, i)

        # a table stuck with force on it is not run again: its loose instant is not what decides
        trial = with_attempts(once, lambda tr: trigger_too_loose(tr.half_width_s, bench.k) if tr.reset_accepted else "",
                              lambda why: recorder.trial_repeated(trigger, i + 1, why))
        cond = {"trigger": trigger, "phase": phase, "phase_seen": trial.phase_seen, "force_n": force,
                "force_at_trigger_n": trial.f0, "trial": i + 1}
        for m in release_measurements(spec, bench, trial.capture, trial.at_trigger, trial.half_width_s,
                                      f"{trigger} trial {i + 1} ({phase}, {force:g} N)", cond,
                                      fastest_n_s=trial.fastest_n_s):
            per_req[(m.requirement.id, m.quantity)].append(recorder.record(m))
        m = Measurement(f"{trigger} trial {i + 1} restart refused until RESET", reqs["ER-LATCH"],
                        trial.restart_refused and trial.reset_accepted,
                        conditions={**cond, "restart_refused": trial.restart_refused, "reset_accepted": trial.reset_accepted},
                        note="" if trial.reset_accepted else "the table could not be brought back to a known state",
                        # a latch is judged on a table the trigger released: one still holding the
                        # force refuses RESET for that reason alone (ER-HALF, ER-RESIDUAL are its findings)
                        preconditions=[Precondition("the controller completed the release (its force at or below "
                                                    "the residual, phase IDLE)", trial.released,
                                                    "released" if trial.released
                                                    else "still holding force when the release window ended"),
                                       Precondition("the rig could try the RESET (its links and relays answered)",
                                                    trial.rig_failure is None,
                                                    "answered" if trial.rig_failure is None
                                                    else str(trial.rig_failure).splitlines()[0])])
        per_req[("ER-LATCH", None)].append(recorder.record(m))
        if trial.watchdog is not None:
            per_req[(WATCHDOG_REQUIREMENT, None)].append(recorder.record(watchdog_measurement(
                spec, bench, trial, f"watchdog trial {i + 1} trip after the last heartbeat ({phase}, {force:g} N)", cond)))
        if trial.rig_failure is not None:
            raise trial.rig_failure  # this trial is recorded; the rig cannot go on
        if not trial.reset_accepted:
            break  # a table stuck with force on it: no further trial is meaningful
    # the verdict is on the worst trial that could be judged: one summary per requirement and trigger
    for (rid, quantity), ms in per_req.items():
        recorder.record(worst_of_trials(trigger, reqs[rid], ms, quantity))
