"""The emulated TCM-1 controller's cycle rules, each stated once.

Why a module of its own: the controller's 1 ms cycle runs two ways. When a rule acts, the
Python controller runs the cycle (`ControllerModel.step`), because acting means latches,
events and a phase entered; when none does, the compiled kernel runs whole stretches of
cycles at once (`kernel.run_quiet`), because Python calls at K x 1,000 cycles a second cost
a core. Both ask these functions: the kernel their compiled form, the controller the same
source run by Python (`interpreted`), so a batch of "quiet" cycles is quiet by the very
rules the controller applies, not by a restatement of them. tests/test_kernel.py holds the
two paths to the same trajectory, bit for bit.

Numbers in, numbers out (numba compiles them): SI units (N, s, m), phases as
drivers.tcm1.Phase numbers them, what the winch does as `Drive`. A rule that never acts
gets an infinite threshold (a disarmed watchdog, no treatment time, a static hold), so
every rule is one comparison with no "is it on" flag beside it.
"""

from __future__ import annotations

import enum
from types import SimpleNamespace

from numba import njit

from drivers.tcm1 import Phase

#: Below this (N) the load cell counts as slack: a release is over, an idle drive need not hold.
SLACK_N = 1.0
#: How close (N) the ramp generator must come to its goal to count as there: float steps
#: of up x h need not land on the goal exactly.
GOAL_REACHED_N = 1e-9


class Drive(enum.IntEnum):
    """What the winch does in a cycle (the kernel's mechanics reads it)."""

    BRAKED = 0  # de-energised, brake engaged: carriage held
    FORCE_LOOP = 1  # energised, closed force loop on the load cell
    RELEASE = 2  # energised emergency release: pay out, never pull
    FREEWHEEL = 3  # no power, brake released: the patient pulls the cord out
    PULL_ON = 4  # a defect: after a trigger the drive still pulls in at its top speed


@njit(cache=True)
def watchdog_expired(now, last_heartbeat, period_s):
    """No heartbeat within the watchdog period (period_s: inf while it is not armed)."""
    return now - last_heartbeat > period_s


@njit(cache=True)
def over_limit(cell, limit_n):
    """The load cell above FORCE_LIMIT (limit_n: inf once the trip has latched)."""
    return cell > limit_n


@njit(cache=True)
def treatment_over(now, started, treatment_s):
    """TREATMENT_TIME has run out (treatment_s: inf when none is set or none is running)."""
    return now - started >= treatment_s


@njit(cache=True)
def next_phase(phase, reference, set_force, in_phase, hold_s, rest_s, cell, position):
    """The phase this cycle ends in, from the phase it began in: a ramp ends when the
    generator reaches the set force, a hold or rest when its time is up (hold_s: inf in
    static mode), a release when the cell is slack (an emergency one also when the
    carriage is back at the taut point)."""
    if phase == Phase.RAMP_UP:
        if reference == set_force:
            return Phase.HOLD
    elif phase == Phase.HOLD:
        if in_phase >= hold_s:
            return Phase.RAMP_TO_REST
    elif phase == Phase.RAMP_TO_REST:
        if reference == set_force:
            return Phase.REST
    elif phase == Phase.REST:
        if in_phase >= rest_s:
            return Phase.RAMP_UP
    elif phase == Phase.RELEASING:
        if reference == 0.0 and cell <= SLACK_N:
            return Phase.IDLE
    elif phase == Phase.EMERGENCY_RELEASE:
        if cell <= SLACK_N or position <= 0.0:
            return Phase.IDLE
    return phase


@njit(cache=True)
def overshoot_turns(reference, goal):
    """The overshoot defect's generator has reached the point past the set force it aimed
    at and turns back."""
    return reference >= goal - GOAL_REACHED_N


@njit(cache=True)
def reference_step(phase, reference, goal, up, down, h):
    """The ramp generator over one step of length h: toward the goal at the commanded
    rates (N/s); no generator runs in an emergency release. Returns (reference, slope)."""
    if phase == Phase.EMERGENCY_RELEASE:
        return reference, 0.0
    error = goal - reference
    if error > 0:
        delta = min(error, up * h)
    else:
        delta = max(error, -down * h)
    reference += delta
    if abs(goal - reference) < GOAL_REACHED_N:
        reference = goal
    return reference, (delta / h if h > 0 else 0.0)


@njit(cache=True)
def drive_of(powered, enabled, phase, reference, cell, now, pull_until, coast_until):
    """What the controller has the winch do this cycle. pull_until / coast_until: the
    instants until which a defective drive still pulls after a trigger / a mains cut."""
    if not powered:
        return Drive.PULL_ON if now < coast_until else Drive.FREEWHEEL
    if phase == Phase.EMERGENCY_RELEASE:
        # the release path acts whether or not the drive is energised: an e-stop on a
        # de-energised winch braked with a little tension on it releases that too
        return Drive.PULL_ON if enabled and now < pull_until else Drive.RELEASE
    if not enabled:
        return Drive.BRAKED
    if phase == Phase.IDLE and reference <= 0.0 and cell <= SLACK_N:
        return Drive.BRAKED  # energised at no force: hold still, do not hunt
    return Drive.FORCE_LOOP


#: Every rule, as the kernel calls it (compiled) ...
COMPILED = (watchdog_expired, over_limit, treatment_over, next_phase, overshoot_turns, reference_step, drive_of)
#: ... and as the Python controller calls it: the same source, run by Python (no dispatch,
#: no compilation for the types Python happens to pass)
interpreted = SimpleNamespace(**{rule.py_func.__name__: rule.py_func for rule in COMPILED})
