"""Named defects the emulated table can be started with (`rig emulate --fault NAME`).

A defect is a way a real table fails its safety specification. Each one changes either
the table's physical numbers (`TableParams`) or a behaviour flag in `Defects` that the
controller model consults; nothing else in the model knows defects exist. Register a
new one with the `@defect` decorator; `requirements` names what must catch it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from drivers.errors import ConfigError


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


CATALOGUE: dict[str, Defect] = {}


def defect(name: str, summary: str, requirements: tuple[str, ...]):
    """Register a defect; the decorated function returns the changed TableParams."""

    def register(fn: Callable) -> Callable:
        if name in CATALOGUE:
            raise ValueError(f"defect {name!r} registered twice")
        CATALOGUE[name] = Defect(name, summary, requirements, fn)
        return fn

    return register


def apply_defects(names: list[str], params, defects: Defects):
    for name in names:
        try:
            entry = CATALOGUE[name]
        except KeyError:
            known = ", ".join(sorted(CATALOGUE))
            raise ConfigError(f"unknown fault {name!r}; known faults: {known}") from None
        params = entry.apply(params, defects)
    return params


@defect(
    "slow-release",
    "the emergency release pays out about 20 times too slowly (worn valve, wrong drive parameter)",
    ("ER-HALF", "ER-RESIDUAL"),
)
def _slow_release(params, defects):
    return replace(params, release_tau_s=1.3, release_min_speed_m_s=0.0005)


@defect(
    "snap-release",
    "the emergency release lets the cord go at once (clutch opens): a sudden release is a hazard",
    ("ER-SNAP",),
)
def _snap_release(params, defects):
    return replace(params, release_mode="clutch", release_tau_s=0.004)


@defect(
    "gain-error",
    "the controller's load cell under-reads by 12 % above 200 N; the table pulls harder than set",
    ("FA-STATIC",),
)
def _gain_error(params, defects):
    return replace(params, hidden_gain_error=0.12, hidden_gain_above_n=200.0)


@defect(
    "offset-error",
    "the controller's load cell reads 25 N low at every force (zeroed under load)",
    ("FA-STATIC",),
)
def _offset_error(params, defects):
    return replace(params, hidden_offset_n=25.0)


@defect(
    "no-watchdog",
    "the communication watchdog never trips: a dead host leaves force on the patient",
    ("ER-WATCHDOG",),
)
def _no_watchdog(params, defects):
    defects.no_watchdog = True
    return params


@defect(
    "brake-holds",
    "the brake holds the winch on mains cut: the force stays on the patient",
    ("ER-POWER",),
)
def _brake_holds(params, defects):
    return replace(params, brake_holds_on_power_loss=True)
