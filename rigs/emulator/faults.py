"""Named defects an emulated table can be started with (`rig emulate --fault NAME`).

A defect is a way a real table fails its safety specification. Each one changes either
the table's numbers (`TableParams` of a traction table, `FdParams` of a flexion-
distraction table) or a behaviour flag in `Defects` that the (winch) controller model
consults; nothing else in the model knows defects exist. Each table kind has one
`Catalogue`, registered by table kind in `CATALOGUES` (`catalogue(kind)`): the traction
catalogue below, the flexion-distraction one in rigs/emulator/fd_faults.py. Register a
new defect with `defect(name, summary, requirements, **changes)` (traction) or the
kind's `Catalogue.defect`; `requirements` names what must catch it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Callable

from drivers.errors import ConfigError
from drivers.tcm1 import Phase
from rigs.emulator.physics import TableParams


@dataclass
class Defects:
    """Behaviour switches of the controller logic; all off on a compliant table."""

    accept_over_limit_setpoint: bool = False
    start_without_switch: bool = False
    reset_under_force: bool = False
    estop_button_ignored: bool = False
    ignore_unplug: bool = False
    no_watchdog: bool = False
    switch_ignored_in_phase: Phase | None = None
    overforce_trip_delay_s: float = 0.0
    hold_time_factor: float = 1.0
    fast_ramp_above_n_s: float | None = None  # commanded rates above this run fast
    fast_ramp_factor: float = 1.0
    overshoot_fraction: float = 0.0  # the ramp generator overshoots the set force by this
    overshoot_return_factor: float = 1.0  # ... and comes back at this fraction of the regressive rate
    estop_coil_no_latch: bool = False
    sporadic_slow_every: int | None = None  # every n-th emergency release is slow
    sporadic_slow_tau_s: float = 1.5
    late_drive_stop_s: float = 0.0  # after a trigger the drive pulls on at its top speed this long
    # -- defects that live in part of the parameter space only (issue 23) --
    watchdog_factor: float = 1.0  # the watchdog trips at this multiple of WATCHDOG_MS
    watchdog_fixed_ms: int | None = None  # the watchdog times out at this, whatever WATCHDOG_MS says (0 still disables)
    rest_offset_n: float = 0.0  # the intermittent REST level sits this far above its setting (negative: below)
    start_descent_rate_factor: float = 1.0  # a START to a target below the present force ramps down this much faster
    overshoot_above_n: float = 0.0  # the overshoot defect acts only for settings above this
    low_setting_below_n: float = 0.0  # TARGET_FORCE settings below this (and above 0) ...
    low_setting_offset_n: float = 0.0  # ... are held this much higher
    timer_slow_after_s: float | None = None  # the treatment timer runs slow once a session passes this
    timer_slow_factor: float = 1.0  # ... by this factor (1.08: each timer second takes 1.08 s)
    mains_cut_coast_s: float = 0.0  # a mains cut during a progressive ramp: the drive pulls on this long
    reset_ignores_switch: bool = False  # RESET accepted with the patient switch pressed
    reset_ignores_held_estop: bool = False  # RESET clears the e-stop latch while the button is held
    start_ignores_watchdog_latch: bool = False  # START's check forgets WATCHDOG_TRIPPED (and its fault code)
    reset_ignores_mains_cut: bool = False  # RESET with the mains still cut does not latch the power loss again
    residual_writable: bool = False  # RESIDUAL_FORCE takes a write (read-only in the contract)
    fault_code_last: bool = False  # every trigger overwrites FAULT_CODE (the contract keeps the first)
    setpoint_check_whole_n: bool = False  # TARGET_FORCE's range check compares whole newtons (0.1-0.9 N above passes)
    limit_lock_idle_only: bool = False  # FORCE_LIMIT's lock is checked only while idle (a running treatment takes it)
    limit_lock_decrease_only: bool = False  # FORCE_LIMIT's lock refuses only a lower limit (a higher one is taken)
    reset_force_factor: float = 1.0  # RESET is refused only above this multiple of RESIDUAL_FORCE

    def ramp_rate_factor(self, commanded_n_s: float) -> float:
        if self.fast_ramp_above_n_s is not None and commanded_n_s > self.fast_ramp_above_n_s:
            return self.fast_ramp_factor
        return 1.0

    def watchdog_ms(self, configured_ms: int) -> float:
        """The period the watchdog really times out at (0: disabled, as configured)."""
        if not configured_ms:
            return 0.0
        if self.watchdog_fixed_ms is not None:
            return float(self.watchdog_fixed_ms)
        return configured_ms * self.watchdog_factor

    def overshoot_for(self, set_force_n: float) -> float:
        """The overshoot fraction the ramp generator applies to this setting."""
        return self.overshoot_fraction if set_force_n > self.overshoot_above_n else 0.0

    def target_n(self, setting_n: float) -> float:
        """The force the controller aims at for a TARGET_FORCE setting."""
        if 0.0 < setting_n < self.low_setting_below_n:
            return setting_n + self.low_setting_offset_n
        return setting_n

    def rest_n(self, setting_n: float) -> float:
        """The force the controller aims at for a REST_FORCE setting."""
        return max(0.0, setting_n + self.rest_offset_n) if self.rest_offset_n else setting_n

    def treatment_s(self, setting_s: float) -> float:
        """Table seconds until the treatment timer shows `setting_s`."""
        after = self.timer_slow_after_s
        if after is None or setting_s <= after:
            return float(setting_s)
        return after + (setting_s - after) * self.timer_slow_factor


@dataclass(frozen=True)
class Defect:
    name: str
    summary: str
    requirements: tuple[str, ...]
    apply: Callable  # (params, defects) -> params
    #: requirements the defect also makes FAIL, each with why that FAIL is right (a true
    #: finding of its own, not a check blaming the wrong requirement); `rig faults matrix`
    #: flags any other FAIL as a new collateral FAIL
    collateral: dict = field(default_factory=dict)
    #: the smallest run profile whose plan reaches the part of the parameter space the
    #: defect lives in ("full": only the full profile's clinical-length sessions do)
    profile: str = "quick"


class Catalogue:
    """The named defects of one table kind: each a change of the kind's numbers
    (`params_type`, a frozen dataclass) and/or of the `Defects` switches."""

    def __init__(self, params_type: type) -> None:
        self.params_type = params_type
        self.entries: dict[str, Defect] = {}

    def defect(self, name: str, summary: str, requirements: tuple[str, ...], collateral: dict | None = None,
               profile: str = "quick", **changes) -> None:
        """Register a defect: `changes` name fields of the kind's numbers (the table's
        physics) or Defects switches (the controller's behaviour) and their defective
        values; `collateral`: other requirements it rightly makes FAIL, each with the
        reason; `profile`: the run profile whose plan can catch it (quick or full)."""
        if profile not in ("quick", "full"):
            raise ValueError(f"defect {name!r}: profile {profile!r} is neither quick nor full")
        if name in self.entries:
            raise ValueError(f"defect {name!r} registered twice")
        physical = {k: v for k, v in changes.items() if k in self.params_type.__dataclass_fields__}
        behaviour = {k: v for k, v in changes.items() if k not in physical}
        unknown = [k for k in behaviour if k not in Defects.__dataclass_fields__]
        if unknown:
            raise ValueError(f"defect {name!r}: {unknown[0]} is neither a table parameter nor a behaviour switch")

        def apply(params, defects):
            for key, value in behaviour.items():
                setattr(defects, key, value)
            return replace(params, **physical) if physical else params

        self.entries[name] = Defect(name, summary, requirements, apply, dict(collateral or {}), profile)

    def apply(self, names: list[str], params, defects: Defects):
        """`params` with the named defects' numbers; their switches set in `defects`."""
        for name in names:
            params = self[name].apply(params, defects)
        return params

    def __getitem__(self, name: str) -> Defect:
        try:
            return self.entries[name]
        except KeyError:
            raise ConfigError(f"unknown fault {name!r}; known faults: {self.known()}") from None

    def known(self) -> str:
        return ", ".join(sorted(self.entries))


#: modules that register a table kind's catalogue when imported (imported before any
#: look-up, as drivers/kinds.py imports its driver modules)
CATALOGUE_MODULES = ("rigs.emulator.fd_faults",)
#: table kind -> its catalogue (the traction kinds share one)
CATALOGUES: dict[str, Catalogue] = {}


def register_catalogue(entries: Catalogue, kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        if kind in CATALOGUES:
            raise ValueError(f"table kind {kind!r} has a defects catalogue already")
        CATALOGUES[kind] = entries


def catalogue(kind: str) -> Catalogue:
    """The defects catalogue of a table kind; an unknown kind is one line naming the known."""
    for module in CATALOGUE_MODULES:
        importlib.import_module(module)
    try:
        return CATALOGUES[kind]
    except KeyError:
        raise ConfigError(f"table kind {kind!r} has no defects catalogue; known: {', '.join(CATALOGUES)}") from None


def check_faults(kind: str, names, option: str = "--fault") -> None:
    """Each name a defect of the kind's catalogue, else one line naming the option and the known."""
    entries = catalogue(kind)
    for name in names:
        if name not in entries.entries:
            raise ConfigError(f"{option} {name}: unknown fault of a {kind} table; known: {entries.known()}")


#: the traction tables' (lumbar, cervical) catalogue
TRACTION = Catalogue(TableParams)
register_catalogue(TRACTION, ("lumbar", "cervical"))
CATALOGUE: dict[str, Defect] = TRACTION.entries
defect = TRACTION.defect


def apply_defects(names: list[str], params, defects: Defects):
    return TRACTION.apply(names, params, defects)


defect(
    "slow-release",
    'the emergency release pays out about 20 times too slowly (worn valve, wrong drive parameter)',
    ('ER-HALF', 'ER-RESIDUAL'),
    release_tau_s=1.3, release_min_speed_m_s=0.0005,
)

defect(
    "snap-release",
    'the emergency release lets the cord go at once (clutch opens): a sudden release is a hazard',
    ('ER-SNAP',),
    release_tau_s=0.004, release_mode='clutch',
)

defect(
    "gain-error",
    "the controller's load cell under-reads by 12 % above 200 N; the table pulls harder than set",
    ('FA-STATIC',),
    collateral={"RA-RATE": "above 200 N the cell under-reads by 12 %, so the force really changes 12-14 % faster "
                           "than the commanded rate there: the fast ramp to 800 N (56.9 N/s for 50 N/s) is RA-RATE's own "
                           "finding",
                "IM-LEVELS": "the session at the high levels holds 658 N for 600 N: the hidden gain error is in the "
                             "intermittent levels too",
                "FA-CELL": "the defect is in the controller's own load cell, which FA-CELL compares with the "
                           "gauge: it disagrees by the hidden 12 % above 200 N — FA-CELL's own finding"},
    hidden_gain_error=0.12, hidden_gain_above_n=200.0,
)

defect(
    "offset-error",
    "the controller's load cell reads 25 N low at every force (zeroed under load)",
    ('FA-STATIC',),
    collateral={"IM-LEVELS": "the table pulls 25 N harder than set at every force, so its intermittent hold and "
                             "rest levels are 25 N off (found by flatness, they are judged: before issue 23 they "
                             "were not even found)",
                "FA-CELL": "the controller's load cell reads 25 N below the gauge at every setting: FA-CELL's own finding",
                "ER-RESIDUAL": "the controller releases to what its cell calls zero, which leaves 25 N on the "
                               "patient: the force never falls below the 15 N residual — a hazard of its own"},
    hidden_offset_n=25.0,
)

defect(
    "no-watchdog",
    'the communication watchdog never trips: a dead host leaves force on the patient',
    ('WD-TIME', 'ER-HALF', 'ER-RESIDUAL'),
    collateral={"ER-NORISE": "a communication loss during a ramp up stops nothing: the ramp goes on pulling to "
                             "its target after the trigger"},
    no_watchdog=True,
)

defect(
    "switch-ignored-in-hold",
    'the patient switch is not read while the treatment holds at the set force (a firmware branch skips it)',
    ('ER-NORISE', 'ER-HALF', 'ER-RESIDUAL'),
    switch_ignored_in_phase=Phase.HOLD,
)

defect(
    "sporadic-slow-release",
    'one emergency release in four is slow (a sticking valve): only repeated trials catch it',
    ('ER-HALF', 'ER-RESIDUAL'),
    sporadic_slow_every=4,
)

defect(
    "late-drive-stop",
    'the drive is stopped 25 ms after an emergency trigger (a contactor that drops out late): until then the '
    'winch pulls in at its top speed, about 1000 N/s on the patient, before the release begins',
    ('ER-NORISE.rise',),
    late_drive_stop_s=0.025,
)

defect(
    "late-overforce-trip",
    'the over-force trip is debounced for 300 ms: the force stays above FORCE_LIMIT too long',
    ('IL-OVERFORCE',),
    overforce_trip_delay_s=0.3,
)

defect(
    "overlimit-setpoint-accepted",
    'TARGET_FORCE above FORCE_LIMIT is accepted (range check against the rated force instead)',
    ('IL-SETPOINT',),
    accept_over_limit_setpoint=True,
)

defect(
    "fast-ramp",
    'commanded ramp rates above 20 N/s run 30 % fast (a rate table with a wrong entry)',
    ('RA-RATE',),
    fast_ramp_above_n_s=20.0, fast_ramp_factor=1.3,
)

defect(
    "overshoot",
    'the ramp generator overshoots the set force by 8 % before settling (a tuning error)',
    ('RA-OVERSHOOT',),
    overshoot_fraction=0.08,
)

defect(
    "long-hold",
    'intermittent hold phases run 15 % long (a timer counting the ramp into the hold)',
    ('IM-TIMING',),
    hold_time_factor=1.15,
)

defect(
    "start-without-switch",
    'START is accepted with the patient switch unplugged',
    ('IL-START',),
    start_without_switch=True,
)

defect(
    "reset-under-force",
    'RESET is accepted while force is present (the residual check is missing)',
    ('IL-RESET',),
    reset_under_force=True,
)

defect(
    "estop-no-latch",
    'the ESTOP coil releases but does not latch: the table can be restarted without RESET',
    ('ER-LATCH',),
    estop_coil_no_latch=True,
)

defect(
    "unplug-ignored",
    'unplugging the patient switch during a treatment is not an emergency trigger (open loop not detected)',
    ('ER-NORISE', 'ER-HALF', 'ER-RESIDUAL'),
    ignore_unplug=True,
)

defect(
    "brake-holds",
    'the brake holds the winch on mains cut: the force stays on the patient',
    ('ER-HALF', 'ER-RESIDUAL'),
    brake_holds_on_power_loss=True,
)

defect(
    "instant-release",
    'the emergency release lets the whole force go within one controller cycle (the cord is let go): a snap',
    ('ER-SNAP',),
    release_mode='instant',
)

defect(
    "overshoot-settles-late",
    'the ramp generator overshoots the set force by 8 % and comes back at a twentieth of the regressive rate: '
    'the force is still off the setting long after the settling time',
    ('RA-OVERSHOOT', 'RA-SETTLE'),
    collateral={"FA-STATIC": "the force is still 8 % above the setting when the settle time the specification "
                             "allows (settle_s, the RA-SETTLE limit) is over: it is not at the setting when FA-STATIC "
                             "is judged",
                "RA-RATE": "the generator's slow way back is how it comes down to any setting below the force: a "
                           "START to a lower setting ramps down at a twentieth of RAMP_DOWN_RATE (2.5 N/s for 50 N/s), "
                           "RA-RATE's own finding on the ramp down the plan samples since issue 23"},
    overshoot_fraction=0.08, overshoot_return_factor=0.05,
)

# ---------------------------------------------------------------------------------------
# Defects that live only in part of the parameter space (issue 23): each is right at the
# defaults a plan is tempted to sample once, and just beyond a limit elsewhere. Which plan
# sample catches each: docs/faults.md.
# ---------------------------------------------------------------------------------------

defect(
    "late-watchdog",
    'the communication watchdog trips at twice WATCHDOG_MS (its timer counts the 2 ms tick as 1 ms): a dead host '
    'leaves force on the patient twice as long as configured',
    ('WD-TIME',),
    watchdog_factor=2.0,
)

defect(
    "watchdog-fixed-period",
    'the communication watchdog ignores WATCHDOG_MS and times out at a fixed 5 s (the factory default compiled in; '
    'the register reads back what was written, 0 still disables): right only when 5 s is configured',
    ('WD-TIME',),
    watchdog_fixed_ms=5000,
)

defect(
    "rest-level-low",
    'the intermittent REST level sits 16 N below its setting (the rest branch subtracts the cord pre-tension the '
    'hold branch does not); the hold level is right',
    ('IM-LEVELS',),
    rest_offset_n=-16.0,
)

defect(
    "fast-ramp-to-lower-setting",
    'a START to a target below the present force ramps down at 1.3 x RAMP_DOWN_RATE (the START branch scales the '
    'descent with the rising ramp\'s rate table); the STOP release, the ramp to rest and progressive ramps are right',
    ('RA-RATE',),
    start_descent_rate_factor=1.3,
)

defect(
    "overshoot-high-force",
    'the ramp generator overshoots the set force by 8 % for settings above 500 N only (the high-force gain '
    'schedule is mistuned); below it the ramps settle cleanly',
    ('RA-OVERSHOOT',),
    overshoot_fraction=0.08, overshoot_above_n=500.0,
)

defect(
    "low-force-offset",
    'settings below 50 N are held 12 N high (the low-range set-point table adds the harness pre-tension twice); '
    'the controller believes its own set point, so its load cell and the gauge agree',
    ('FA-STATIC',),
    low_setting_below_n=50.0, low_setting_offset_n=12.0,
)

defect(
    "timer-drift-long",
    'the treatment timer runs 8 % slow once a session passes 5 minutes of table time (it switches to a coarser, '
    'wrongly scaled tick): a 45 s and a 600 s session end within TT-TIME\'s 30 s, an 1800 s one 120 s late',
    ('TT-TIME',),
    profile="full",
    timer_slow_after_s=300.0, timer_slow_factor=1.08,
)

defect(
    "slow-release-high-force",
    'the emergency release valve\'s high-pressure stage is worn: a release from above 300 N pays out about 20 times '
    'too slowly (as slow-release); from lower forces the release is right',
    ('ER-HALF', 'ER-RESIDUAL'),
    worn_release_above_n=300.0,
)

defect(
    "mains-cut-coast",
    'on a mains cut during a progressive ramp the power-fail interrupt waits for the ramp generator\'s update, and '
    'the drive pulls on at its top speed for about 40 ms on the DC link before the brake opens; in the other '
    'phases the cut releases at once',
    ('ER-NORISE.rise',),
    mains_cut_coast_s=0.040,
)

defect(
    "switch-ignored-in-ramp-to-rest",
    'the patient switch is not read while the intermittent treatment ramps down to its rest level (a firmware '
    'branch skips it)',
    ('ER-NORISE', 'ER-HALF', 'ER-RESIDUAL'),
    switch_ignored_in_phase=Phase.RAMP_TO_REST,
)

defect(
    "reset-with-switch-pressed",
    'RESET is accepted while the patient switch is pressed (the LAST_REJECT 3 check is missing; the switch then '
    'latches again at once)',
    ('IL-RESET',),
    reset_ignores_switch=True,
)

defect(
    "reset-clears-held-estop",
    'RESET clears the e-stop latch while the e-stop button is still held (the button is read on its edge only), '
    'so START is accepted with the button pressed',
    ('IL-START',),
    reset_ignores_held_estop=True,
)

defect(
    "start-after-watchdog-trip",
    'START is accepted while WATCHDOG_TRIPPED is latched (the start check forgets that latch and its fault code)',
    ('IL-START',),
    collateral={"ER-LATCH": "after a watchdog trip the cause is gone (the heartbeat is fed again) and START is "
                            "accepted without RESET: the restart interlock after an emergency release is missing "
                            "for that trigger — ER-LATCH's own finding in every watchdog trial"},
    start_ignores_watchdog_latch=True,
)

# ---------------------------------------------------------------------------------------
# The contract items and one-point corners the coverage map found untried (issue 23):
# each defect is caught by one check only (docs/faults.md says which).
# ---------------------------------------------------------------------------------------

defect(
    "reset-clears-mains-latch",
    'RESET with the mains still cut clears the power-loss latch for good (the power-fail input is read on its edge '
    'only): when the mains returns the table is READY, and ENABLE and START are taken without a RESET',
    ('IL-START',),
    reset_ignores_mains_cut=True,
)

defect(
    "residual-writable",
    'RESIDUAL_FORCE takes a write (the register table marks it writable): a raised residual lets RESET through '
    'with more force on the patient and moves what "released" means',
    ('IL-LIMIT-LOCK',),
    residual_writable=True,
)

defect(
    "fault-code-overwritten",
    'FAULT_CODE is overwritten by every trigger (the contract keeps the first until RESET): after an e-stop a '
    'later patient-switch press hides what stopped the table',
    ('ER-LATCH',),
    fault_code_last=True,
)

defect(
    "setpoint-limit-off-by-one",
    "TARGET_FORCE's range check compares whole newtons (value // 10 > FORCE_LIMIT // 10): a target up to 0.9 N "
    "above FORCE_LIMIT is taken; 1 N and more above is refused",
    ('IL-SETPOINT',),
    setpoint_check_whole_n=True,
)

defect(
    "limit-writable-while-running",
    "FORCE_LIMIT's lock is checked only while the drive is enabled and idle: during a treatment a new limit is "
    "taken",
    ('IL-LIMIT-LOCK',),
    limit_lock_idle_only=True,
)

defect(
    "limit-raise-while-enabled",
    "FORCE_LIMIT's lock refuses only a lower limit while enabled (written to keep a running treatment from "
    "tripping): a higher limit is taken",
    ('IL-LIMIT-LOCK',),
    limit_lock_decrease_only=True,
)

defect(
    "reset-threshold-doubled",
    "RESET is refused only above twice RESIDUAL_FORCE (the check uses the release's hysteresis band): with up to "
    "2 x the residual on the patient the latch is cleared",
    ('IL-RESET',),
    reset_force_factor=2.0,
)
