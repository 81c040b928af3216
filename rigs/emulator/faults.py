"""Named defects the emulated table can be started with (`rig emulate --fault NAME`).

A defect is a way a real table fails its safety specification. Each one changes either
the table's physical numbers (`TableParams`) or a behaviour flag in `Defects` that the
controller model consults; nothing else in the model knows defects exist. Register a
new one with `defect(name, summary, requirements, **changes)`; `requirements` names
what must catch it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from drivers.errors import ConfigError
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
    switch_ignored_in_phase: int | None = None
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

    def ramp_rate_factor(self, commanded_n_s: float) -> float:
        if self.fast_ramp_above_n_s is not None and commanded_n_s > self.fast_ramp_above_n_s:
            return self.fast_ramp_factor
        return 1.0


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


CATALOGUE: dict[str, Defect] = {}


def defect(name: str, summary: str, requirements: tuple[str, ...], collateral: dict | None = None, **changes) -> None:
    """Register a defect: `changes` name TableParams fields (the table's physics) or
    Defects switches (the controller's behaviour) and their defective values;
    `collateral`: other requirements it rightly makes FAIL, each with the reason."""
    if name in CATALOGUE:
        raise ValueError(f"defect {name!r} registered twice")
    physical = {k: v for k, v in changes.items() if k in TableParams.__dataclass_fields__}
    behaviour = {k: v for k, v in changes.items() if k not in physical}
    unknown = [k for k in behaviour if k not in Defects.__dataclass_fields__]
    if unknown:
        raise ValueError(f"defect {name!r}: {unknown[0]} is neither a table parameter nor a behaviour switch")

    def apply(params, defects):
        for key, value in behaviour.items():
            setattr(defects, key, value)
        return replace(params, **physical) if physical else params

    CATALOGUE[name] = Defect(name, summary, requirements, apply, dict(collateral or {}))


def apply_defects(names: list[str], params, defects: Defects):
    for name in names:
        try:
            entry = CATALOGUE[name]
        except KeyError:
            known = ", ".join(sorted(CATALOGUE))
            raise ConfigError(f"unknown fault {name!r}; known faults: {known}") from None
        params = entry.apply(params, defects)
    return params


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
    collateral={"FA-CELL": "the defect is in the controller's own load cell, which FA-CELL compares with the "
                           "gauge: it disagrees by the hidden 12 % above 200 N — FA-CELL's own finding"},
    hidden_gain_error=0.12, hidden_gain_above_n=200.0,
)

defect(
    "offset-error",
    "the controller's load cell reads 25 N low at every force (zeroed under load)",
    ('FA-STATIC',),
    collateral={"FA-CELL": "the controller's load cell reads 25 N below the gauge at every setting: FA-CELL's own finding",
                "ER-RESIDUAL": "the controller releases to what its cell calls zero, which leaves 25 N on the "
                               "patient: the force never falls below the 15 N residual — a hazard of its own"},
    hidden_offset_n=25.0,
)

defect(
    "no-watchdog",
    'the communication watchdog never trips: a dead host leaves force on the patient',
    ('ER-HALF', 'ER-RESIDUAL'),
    collateral={"ER-NORISE": "a communication loss during a ramp up stops nothing: the ramp goes on pulling to "
                             "its target after the trigger"},
    no_watchdog=True,
)

defect(
    "switch-ignored-in-hold",
    'the patient switch is not read while the treatment holds at the set force (a firmware branch skips it)',
    ('ER-NORISE', 'ER-HALF', 'ER-RESIDUAL'),
    switch_ignored_in_phase=2,
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
                             "is judged"},
    overshoot_fraction=0.08, overshoot_return_factor=0.05,
)
