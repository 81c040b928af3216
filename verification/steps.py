"""The fixed steps of the suite tests: how long each waits, records or holds, and what
fraction of a force it ramps to — in table seconds.

Stated once here because two parties read them: the test that takes the step, and its
time budget (verification/budget.py), which plans each test's time and so its time limit on a
rig. A step changed in one place only would make the budget plan a test that no longer
exists.
"""

from __future__ import annotations

# ---------------------------------------------------------------- test_force_accuracy
CELL_WINDOW_S = 1.0  # controller and gauge readings at each setting, once the settle time is over

# ---------------------------------------------------------------- test_ramps
LOWER_FRACTION = 0.5  # the ramp down's lower setting, a fraction of the case's force
AFTER_LOWER_START_S = 0.2  # past the START to the lower setting before its phase is read
AFTER_RAMP_S = 0.3  # recorded after the STOP release ends
AFTER_TREATMENT_S = 0.5  # recorded after a session's final release ends

# ---------------------------------------------------------------- test_emergency_release
IN_PHASE_S = 0.2  # into a hold or rest before triggering
AFTER_RELEASE_S = 0.15  # recorded after the table counts as released
TRIAL_HOLD_S = 0.6  # a trial's hold and rest (the watchdog's: its period + 1 s)

# ---------------------------------------------------------------- test_interlocks
QUIET_S = 1.0  # in which nothing may move after a refusal
RESET_SETTLE_S = 0.5  # at the hold before the RESET just above the residual
LIMIT_RUNNING_FRACTION = 0.25  # of FORCE_LIMIT: the treatment running while the limit is written
LIMIT_LOWER_FRACTION = 0.5  # of FORCE_LIMIT: the lower limit written (above the running treatment's setting)
JUST_ABOVE_N = 5.0  # that hold above RESIDUAL_FORCE (N): more than FA-CELL's 3 N there


def trial_rates(spec, trigger: str, phase: str, force: float) -> tuple[float, float, float, float]:
    """One emergency trial's ramp rates (up, down) and hold and rest times. The watchdog
    needs room to trip: its trials hold and rest one period + 1 s, and ramp slowly enough
    that the trip still finds the phase it is meant for."""
    em, wd = spec.plan.emergency, spec.plan.watchdog_s
    up = spec.max_ramp_rate_n_s if phase == "ramp_up" else em.setup_ramp_n_s
    down = em.setup_ramp_n_s if phase != "ramp_to_rest" else spec.max_ramp_rate_n_s
    hold = rest = TRIAL_HOLD_S
    if trigger == "watchdog":
        hold = rest = wd + 1.0
        if phase == "ramp_up":
            up = min(up, force / (2 * wd + 1.0))
        if phase == "ramp_to_rest":
            down = min(down, force / 2 / (2 * wd + 1.0))
    return up, down, hold, rest


# ---------------------------------------------------------------- IL-OVERFORCE (test_interlocks)
HOLD_FRACTION = 0.8  # the table holds this fraction of FORCE_LIMIT before the pull
TRIP_WAIT_S = 2.0  # the longest the emulated snag waits for the trip (table s)
AFTER_TRIP_S = 1.0  # table seconds of the gauge kept after the trip was seen (the emulated snag's)
OPERATOR_AFTER_TRIP_S = 0.5  # the same for a person's pull: they are told to stop only after it
SERIES_BEFORE_S = 2.0  # table seconds of a person's (long) pull kept in the series before the crossing
