"""The emulated table's 1 ms controller cycle, compiled (numba), run in batches.

Why: the table is integrated in 1 ms steps of table time, so at time scale K the
emulator owes 1,000·K steps per wall second. As Python calls that cost most of a core
at K = 10 and made every Modbus reply wait for the physics. Here the continuous part
of a cycle (ramp generator, servo winch, cord and body, load cell, force history) is
compiled, and `run_quiet` runs as many cycles as it can in one call, up to the first
one in which the controller's logic would change something discrete (a phase change,
a trip, a latch) or a ground-truth force crossing happens. That cycle is handed back
to the Python controller (`rigs/emulator/controller.py`), which does what the rule's
firing entails. Which cycles are quiet, where the ramp generator goes and what the winch
does are not restated here: the kernel calls the controller's own rules
(`rigs/emulator/rules.py`), compiled, on the same floats.

So the 1 ms cycle view of the registers, the exact instants of triggers (a partial
step up to a write's true instant), the seeded noise (drawn from the table's
generator in blocks, consumed one value per cycle whichever path runs it) and the
event log are all as they were when every cycle was a Python call.

Arrays, not objects, cross the boundary; the index constants below name their slots.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rigs.emulator import rules
from rigs.emulator.rules import Drive

#: how an emergency release pays out (TableParams.release_mode): a lagged servo, a
#: clutch at the winch's top speed, or the cord let go at once
RELEASE_MODES = {"servo": 0.0, "clutch": 1.0, "instant": 2.0}
RELEASE_INSTANT = 2.0

# -- mechanics state `s` (S_RELEASE_TAU: this release's tau, a defect may slow one; S_PATH:
#    the cord's path lengthened from outside, m — a flexion-distraction section moving the
#    ankle cuffs; 0 on a traction table) --------------------------------------------------
S_T, S_X, S_V, S_FORCE, S_CELL, S_EXT, S_EXT_TARGET, S_EXT_RATE, S_RELEASE_TAU, S_PATH, S_PATH_TARGET, \
    S_PATH_RATE = range(12)
S_SIZE = 12

# -- table parameters `p` ---------------------------------------------------------------
(P_STIFFNESS, P_DAMPING, P_SERVO_TAU, P_PULL_MAX, P_PAYOUT_MAX, P_LOOP_GAIN, P_RELEASE_MIN_SPEED,
 P_CLUTCH, P_FREEWHEEL_TAU, P_BRAKE_HOLDS, P_CARRIAGE_MIN, P_CARRIAGE_MAX, P_CELL_GAIN_ERROR,
 P_CELL_OFFSET, P_CELL_NOISE, P_HIDDEN_GAIN_ERROR, P_HIDDEN_GAIN_ABOVE, P_HIDDEN_OFFSET, P_K_NOM,
 P_DT, P_RELEASE_TAU) = range(21)
P_SIZE = 21

# -- integer state `iv`: history count, noise cursor -------------------------------------
I_HIST_N, I_NOISE_POS = 0, 1
I_SIZE = 2

# -- controller cycle inputs `c` (packed by the controller before a batch; SI units; a
#    threshold of a rule that cannot act is inf, see rules.py) ------------------------------
(C_PHASE, C_ENABLED, C_POWERED, C_REF, C_GOAL, C_SET_FORCE, C_UP, C_DOWN, C_WATCHDOG_S, C_LAST_HB,
 C_LIMIT, C_TREAT_S, C_TREAT_STARTED, C_PHASE_STARTED, C_HOLD_S, C_REST_S, C_OVERSHOOT_CHECK,
 C_WATCH_LEVEL, C_PULL_UNTIL, C_COAST_UNTIL) = range(20)
C_SIZE = 20

# -- why a batch ended -------------------------------------------------------------------
DONE, NOT_QUIET, WATCH, NEED_NOISE = 0, 1, 2, 3


@njit(cache=True)
def payout_speed(p, force, tau):
    speed = max(force, 0.0) / (p[P_K_NOM] * tau)
    extra = p[P_RELEASE_MIN_SPEED] if force > 0.5 else 0.0
    return min(p[P_PAYOUT_MAX], speed + extra)


@njit(cache=True)
def true_force(s, p, x, v):
    # the patient pulling back, and a longer path, stretch the cord as if the winch had taken up more
    x = x + s[S_EXT] / p[P_STIFFNESS] + s[S_PATH]
    if x <= 0.0:
        return 0.0
    return max(0.0, p[P_STIFFNESS] * x + p[P_DAMPING] * v)


@njit(cache=True)
def cell_reading(p, force, z):
    """The controller's load cell: it sees the force a defect hides, with its own error."""
    hidden = p[P_HIDDEN_OFFSET]
    if p[P_HIDDEN_GAIN_ERROR] != 0.0 and force > p[P_HIDDEN_GAIN_ABOVE]:
        hidden += (force - p[P_HIDDEN_GAIN_ABOVE]) * p[P_HIDDEN_GAIN_ERROR]
    seen = force - hidden
    return seen * (1.0 + p[P_CELL_GAIN_ERROR]) + p[P_CELL_OFFSET] + p[P_CELL_NOISE] * z


@njit(cache=True)
def follow(s, value, target, rate, h):
    """An input from outside the winch heading for its target at its rate (0: jumps), over h."""
    if s[value] != s[target]:
        gap = s[target] - s[value]
        step = abs(gap) if s[rate] == 0.0 else min(abs(gap), s[rate] * h)
        s[value] += step if gap > 0 else -step


@njit(cache=True)
def mech_step(s, p, iv, hist_t, hist_f, noise, h, drive, reference, slope):
    """One step of length h of winch + body; consumes one noise value; appends history."""
    follow(s, S_EXT, S_EXT_TARGET, S_EXT_RATE, h)
    follow(s, S_PATH, S_PATH_TARGET, S_PATH_RATE, h)
    k_nom = p[P_K_NOM]
    let_go = False
    if drive == Drive.BRAKED:
        v = 0.0
    elif drive == Drive.RELEASE and p[P_CLUTCH] == RELEASE_INSTANT:
        v = 0.0
        let_go = True  # the cord is let go: slack within this cycle, whatever the winch can pay out
    elif drive == Drive.FREEWHEEL:
        v = 0.0 if p[P_BRAKE_HOLDS] != 0.0 else -payout_speed(p, s[S_CELL], p[P_FREEWHEEL_TAU])
    elif drive == Drive.RELEASE and p[P_CLUTCH] != 0.0:
        v = -payout_speed(p, s[S_FORCE], p[P_RELEASE_TAU])
    else:
        if drive == Drive.RELEASE:
            v_cmd = -payout_speed(p, s[S_CELL], s[S_RELEASE_TAU])
        elif drive == Drive.PULL_ON:
            v_cmd = p[P_PULL_MAX]  # a defect: the drive, not yet stopped, pulls in at its top speed
        else:
            v_cmd = slope / k_nom + p[P_LOOP_GAIN] * (reference - s[S_CELL]) / k_nom
            v_cmd = min(max(v_cmd, -p[P_PAYOUT_MAX]), p[P_PULL_MAX])
        v = s[S_V] + (v_cmd - s[S_V]) * min(1.0, h / p[P_SERVO_TAU])
    x = s[S_X] + v * h
    if let_go:
        x = min(x, -s[S_EXT] / p[P_STIFFNESS] - s[S_PATH])
    x = min(max(x, p[P_CARRIAGE_MIN]), p[P_CARRIAGE_MAX])
    if x == p[P_CARRIAGE_MIN] or x == p[P_CARRIAGE_MAX]:
        v = 0.0
    s[S_X] = x
    s[S_V] = v
    s[S_T] = s[S_T] + h
    force = true_force(s, p, x, v)
    s[S_FORCE] = force
    pos = iv[I_NOISE_POS]
    s[S_CELL] = cell_reading(p, force, noise[pos])
    iv[I_NOISE_POS] = pos + 1
    # the history is a ring stored twice over, so any window of it is one contiguous slice
    size = hist_t.shape[0] // 2
    n = iv[I_HIST_N]
    i = n % size
    hist_t[i] = s[S_T]
    hist_t[i + size] = s[S_T]
    hist_f[i] = force
    hist_f[i + size] = force
    iv[I_HIST_N] = n + 1


@njit(cache=True)
def _quiet(s, c, now):
    """No rule of the controller acts in this cycle: the watchdog, the over-force trip,
    the treatment timer, the phase's end and the overshoot defect's turn, each asked of
    the rule the Python controller applies (rules.py)."""
    cell = s[S_CELL]
    phase = int(c[C_PHASE])
    ref = c[C_REF]
    return not (
        rules.watchdog_expired(now, c[C_LAST_HB], c[C_WATCHDOG_S])
        or rules.over_limit(cell, c[C_LIMIT])
        or rules.treatment_over(now, c[C_TREAT_STARTED], c[C_TREAT_S])
        or rules.next_phase(phase, ref, c[C_SET_FORCE], now - c[C_PHASE_STARTED], c[C_HOLD_S], c[C_REST_S],
                            cell, s[S_X]) != phase
        or (c[C_OVERSHOOT_CHECK] != 0.0 and rules.overshoot_turns(ref, c[C_GOAL]))
    )


@njit(cache=True)
def run_quiet(s, p, iv, hist_t, hist_f, noise, c, t_target):
    """Whole cycles up to t_target while each is quiet; returns (reason, cycles run).

    Stops before a cycle that is not quiet (NOT_QUIET: the controller runs that one),
    after a cycle whose true force fell below c[C_WATCH_LEVEL] (WATCH: the controller
    logs the crossing), or when the noise block is used up (NEED_NOISE)."""
    dt = p[P_DT]
    done = 0
    powered = c[C_POWERED] != 0.0
    enabled = c[C_ENABLED] != 0.0
    phase = int(c[C_PHASE])
    while t_target - s[S_T] >= dt:
        if iv[I_NOISE_POS] >= noise.shape[0]:
            return NEED_NOISE, done
        now = s[S_T]
        slope = 0.0
        if powered:  # unpowered, the controller's logic is dark: only the winch moves
            if not _quiet(s, c, now):
                return NOT_QUIET, done
            c[C_REF], slope = rules.reference_step(phase, c[C_REF], c[C_GOAL], c[C_UP], c[C_DOWN], dt)
        drive = rules.drive_of(powered, enabled, phase, c[C_REF], s[S_CELL], now, c[C_PULL_UNTIL], c[C_COAST_UNTIL])
        mech_step(s, p, iv, hist_t, hist_f, noise, dt, drive, c[C_REF], slope)
        done += 1
        if s[S_FORCE] < c[C_WATCH_LEVEL]:
            return WATCH, done
    return DONE, done


def warm_up() -> None:
    """Load (or compile, the first time on a machine) every kernel function now, before
    an emulator answers anything: the first call of each costs ~0.1 s, which would
    otherwise be the first request's reply time."""
    from rigs.emulator.table import EmulatedTable

    table = EmulatedTable()
    table.advance_by(0.0105)  # quiet cycles, a Python cycle and a partial step


#: kernel slot -> TableParams field (numbers as they are)
_PARAM_FIELDS = (
    (P_STIFFNESS, "stiffness_n_per_m"), (P_DAMPING, "damping_ns_per_m"), (P_SERVO_TAU, "servo_tau_s"),
    (P_PULL_MAX, "pull_speed_max_m_s"), (P_PAYOUT_MAX, "payout_speed_max_m_s"), (P_LOOP_GAIN, "loop_gain_per_s"),
    (P_RELEASE_MIN_SPEED, "release_min_speed_m_s"), (P_FREEWHEEL_TAU, "freewheel_tau_s"),
    (P_CARRIAGE_MIN, "carriage_min_m"), (P_CARRIAGE_MAX, "carriage_max_m"), (P_CELL_GAIN_ERROR, "cell_gain_error"),
    (P_CELL_OFFSET, "cell_offset_n"), (P_CELL_NOISE, "cell_noise_n"), (P_HIDDEN_GAIN_ERROR, "hidden_gain_error"),
    (P_HIDDEN_GAIN_ABOVE, "hidden_gain_above_n"), (P_HIDDEN_OFFSET, "hidden_offset_n"),
    (P_K_NOM, "nominal_stiffness"), (P_DT, "dt"), (P_RELEASE_TAU, "release_tau_s"),
)


def params_array(params) -> np.ndarray:
    """TableParams as the kernel's `p` array."""
    p = np.zeros(P_SIZE)
    for slot, name in _PARAM_FIELDS:
        p[slot] = getattr(params, name)
    p[P_CLUTCH] = RELEASE_MODES[params.release_mode]
    p[P_BRAKE_HOLDS] = 1.0 if params.brake_holds_on_power_loss else 0.0
    return p
