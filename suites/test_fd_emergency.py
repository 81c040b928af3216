"""Emergency stop of a flexion-distraction table: every trigger of the plan (the ESTOP
coil, the e-stop button, the patient switch pressed and unplugged, the watchdog, a mains
cut), striking each moving phase (out, back) of each motion (flexion, lateral to either
side) at mid-move at the rated speed, with the distraction held; N trials per trigger
(the plan's count for the profile). The verdict is on the worst trial; the summary gives
min, max, mean and SD per trigger (ISO 13855 practice).

Measured with the inclinometer (the stop's time and travel, the hold after it, no
automatic return after RESET) and the distraction gauge (the release, as traction's
ER-*), in table seconds from the trigger: the acknowledged relay or coil write, or the
watchdog's trip bracketed by status reads (verification/fd_emergency.py).
"""

from __future__ import annotations

import allure
import pytest

from verification.emergency import ATTEMPTS, trigger_too_loose, with_attempts, worst_of_trials
from verification.fd_emergency import (REQUIREMENTS, RETURN_KEY, StrikeMissed, repeat_reason, run_trial,
                                       trial_measurements)
from verification.release import RISE_KEY
from verification.spec import EMERGENCY_TRIGGERS

pytestmark = [pytest.mark.protocol("FDC-1")]

#: every (requirement, quantity) a trial measures: each requirement's own, ES-HOLD's return
#: after RESET and ES-RELEASE's rise
QUANTITIES = [*((r, None) for r in REQUIREMENTS), ("ES-HOLD", RETURN_KEY), ("ES-RELEASE", RISE_KEY)]


@pytest.mark.requirement(*REQUIREMENTS)
@pytest.mark.parametrize("trigger", EMERGENCY_TRIGGERS)
def test_fd_emergency_stop(fd_bench, spec, recorder, trigger, profile):
    bench = fd_bench
    em = spec.plan.emergency
    if trigger not in em.triggers:
        pytest.skip(f"trigger {trigger} is not in specification {spec.name}'s plan")
    trials = em.trial_plan(profile)
    per: dict[tuple[str, str | None], list] = {q: [] for q in QUANTITIES}
    for i, (motion, phase, force) in enumerate(trials):
        def once():
            bench.context(requirement=None, trigger=trigger, phase=f"{motion} {phase}", force_n=force, trial=i + 1,
                          trials=len(trials))
            with allure.step(f"trial {i + 1}: {trigger} during {motion} {phase} at {force:g} N"):
                for attempt in range(ATTEMPTS):
                    try:
                        return run_trial(bench, spec, trigger, motion, phase, force, i)
                    except StrikeMissed as exc:  # the trigger never pulled: nothing to judge, run it again
                        if attempt == ATTEMPTS - 1:
                            raise
                        recorder.trial_repeated(trigger, i + 1, str(exc).splitlines()[0])

        trial = with_attempts(once, lambda tr: repeat_reason(tr, bench.k),
                              lambda why: recorder.trial_repeated(trigger, i + 1, why))
        cond = {"trigger": trigger, "motion": motion, "phase": phase, "phase_seen": trial.phase_seen,
                "force_n": force, "speed_deg_s": trial.speed_deg_s, "depth_deg": trial.depth_deg, "trial": i + 1,
                **({"trigger_instant_note": trigger_too_loose(trial.half_width_s, bench.k)}
                   if trigger_too_loose(trial.half_width_s, bench.k) else {})}
        for m in trial_measurements(spec, bench, trial, f"{trigger} trial {i + 1} ({motion} {phase}, {force:g} N)",
                                    cond):
            per[(m.requirement.id, m.quantity)].append(recorder.record(m))
        if trial.rig_failure is not None:
            raise trial.rig_failure  # this trial is recorded; the rig cannot go on
        if not trial.reset_accepted:
            break  # a table that cannot be brought back: no further trial is meaningful
    for (rid, quantity), ms in per.items():
        recorder.record(worst_of_trials(trigger, spec.requirement(rid), ms, quantity, sd=True))
