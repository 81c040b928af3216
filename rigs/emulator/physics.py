"""Mechanics of the emulated table: servo winch, cord, harness and patient.

A physical model rather than a register echo, so that the suites measure something
that can be wrong in the ways a real table is wrong: the force loop has finite
bandwidth and works on the controller's own (slightly wrong) load cell, the winch has
a speed limit and a velocity lag, the emergency release is fast but not instantaneous,
the body is a spring with damping, and the brake decides what a power cut does.

The model is integrated in table time with a fixed step (1 ms) and an exact final
partial step, so an event applied "now" lands at its true instant, not on a grid.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

import numpy as np

from drivers.tcm1 import DeviceKind


class Drive(enum.Enum):
    """What the winch is doing; chosen by the controller each step."""

    BRAKED = "braked"  # de-energised, brake engaged: carriage held
    FORCE_LOOP = "force_loop"  # energised, closed force loop on the load cell
    RELEASE = "release"  # energised emergency release: pay out, never pull
    FREEWHEEL = "freewheel"  # no power, brake released: the patient pulls the cord out


@dataclass(frozen=True)
class TableParams:
    """Numbers of one table. Defaults are a nominal lumbar table; see `for_kind`."""

    kind: DeviceKind = DeviceKind.LUMBAR
    rated_force_n: float = 890.0
    residual_force_n: float = 15.0
    serial: str = "EMU-LUMBAR-0001"
    firmware: int = 0x0103
    dt: float = 1e-3  # controller loop period and integration step, table seconds
    stiffness_n_per_m: float = 25_000.0  # cord + harness + patient
    damping_ns_per_m: float = 40.0
    servo_tau_s: float = 0.015  # winch velocity loop lag
    pull_speed_max_m_s: float = 0.04
    payout_speed_max_m_s: float = 1.0
    loop_gain_per_s: float = 15.0  # force loop proportional gain (bandwidth ~2.4 Hz)
    release_tau_s: float = 0.06  # emergency release: exponential force decay
    release_min_speed_m_s: float = 0.004  # so the release reaches slack in finite time
    release_mode: str = "servo"  # "servo" (lagged) or "clutch" (no lag: a snap)
    freewheel_tau_s: float = 0.18  # power loss, brake released
    brake_holds_on_power_loss: bool = False
    carriage_min_m: float = -0.05
    carriage_max_m: float = 0.20
    # the controller's own load cell: what it believes the force is
    cell_gain_error: float = 0.002
    cell_offset_n: float = 0.3
    cell_noise_n: float = 0.05
    # a defect: extra gain error above a force, invisible to the cell (faults use it)
    hidden_gain_error: float = 0.0
    hidden_gain_above_n: float = 0.0
    hidden_offset_n: float = 0.0

    @classmethod
    def for_kind(cls, kind: str | DeviceKind, seed: int = 0) -> "TableParams":
        """A table of this kind; the seed draws its individual imperfections."""
        kind = DeviceKind[kind.upper()] if isinstance(kind, str) else DeviceKind(kind)
        rng = np.random.default_rng([seed, 0x7AB1E])
        if kind == DeviceKind.CERVICAL:
            base = cls(
                kind=kind,
                rated_force_n=222.0,
                residual_force_n=10.0,
                serial=f"EMU-CERV-{seed % 10000:04d}",
                stiffness_n_per_m=8_000.0,
                damping_ns_per_m=15.0,
                pull_speed_max_m_s=0.02,
                cell_noise_n=0.02,
            )
        else:
            base = cls(kind=kind, serial=f"EMU-LUMB-{seed % 10000:04d}")
        return replace(
            base,
            stiffness_n_per_m=base.stiffness_n_per_m * float(rng.uniform(0.85, 1.15)),
            damping_ns_per_m=base.damping_ns_per_m * float(rng.uniform(0.7, 1.3)),
            servo_tau_s=base.servo_tau_s * float(rng.uniform(0.9, 1.1)),
            release_tau_s=base.release_tau_s * float(rng.uniform(0.9, 1.1)),
            cell_gain_error=float(rng.normal(0.0, 0.002)),
            cell_offset_n=float(rng.normal(0.0, 0.2)),
        )

    @property
    def nominal_stiffness(self) -> float:
        """What the controller assumes for its feed-forward (the design value)."""
        return 8_000.0 if self.kind == DeviceKind.CERVICAL else 25_000.0


@dataclass
class MechanicsState:
    t: float = 0.0
    x: float = 0.0  # carriage take-up beyond the taut point, m (negative: slack)
    v: float = 0.0  # carriage speed, m/s (positive pulls)
    force: float = 0.0  # true cord force, N
    cell: float = 0.0  # the controller's load-cell reading, N


@dataclass
class ForceHistory:
    """Recent (t, true force) pairs so instruments can sample between steps."""

    size: int = 16384
    t: np.ndarray = field(init=False)
    f: np.ndarray = field(init=False)
    n: int = 0

    def __post_init__(self) -> None:
        self.t = np.zeros(self.size)
        self.f = np.zeros(self.size)

    def append(self, t: float, f: float) -> None:
        i = self.n % self.size
        self.t[i] = t
        self.f[i] = f
        self.n += 1

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n <= self.size:
            return self.t[: self.n], self.f[: self.n]
        i = self.n % self.size
        return np.concatenate((self.t[i:], self.t[:i])), np.concatenate((self.f[i:], self.f[:i]))

    @property
    def oldest(self) -> float:
        return float(self.t[0] if self.n <= self.size else self.t[self.n % self.size])


class Mechanics:
    """Integrates winch + body; the controller decides `drive` and `reference`."""

    def __init__(self, params: TableParams, rng: np.random.Generator) -> None:
        self.p = params
        self.rng = rng
        self.s = MechanicsState()
        self.history = ForceHistory()
        self.history.append(0.0, 0.0)
        #: pull from outside the winch (the patient pulling back, a snag), N at the cord
        self.external_n = 0.0
        self.external_target_n = 0.0
        self.external_rate_n_s = 0.0  # 0: jumps to the target
        #: a defect may make one release slower than the table's own parameter
        self.release_tau_override: float | None = None

    def true_force(self, x: float, v: float) -> float:
        # the patient pulling back stretches the cord as if the winch had taken up more
        x = x + self.external_n / self.p.stiffness_n_per_m
        if x <= 0.0:
            return 0.0
        return max(0.0, self.p.stiffness_n_per_m * x + self.p.damping_ns_per_m * v)

    def cell_reading(self, force: float) -> float:
        p = self.p
        hidden = p.hidden_offset_n
        if p.hidden_gain_error and force > p.hidden_gain_above_n:
            hidden += (force - p.hidden_gain_above_n) * p.hidden_gain_error
        # the cell sees the force the defect hides: it reads less than the true force
        seen = force - hidden
        return seen * (1.0 + p.cell_gain_error) + p.cell_offset_n + float(
            self.rng.normal(0.0, p.cell_noise_n)
        )

    def step(self, h: float, drive: Drive, reference: float, reference_slope: float) -> None:
        p, s = self.p, self.s
        if self.external_n != self.external_target_n:
            gap = self.external_target_n - self.external_n
            step = abs(gap) if not self.external_rate_n_s else min(abs(gap), self.external_rate_n_s * h)
            self.external_n += step if gap > 0 else -step
        k_nom = p.nominal_stiffness
        if drive is Drive.BRAKED:
            v = 0.0
        elif drive is Drive.FREEWHEEL:
            v = 0.0 if p.brake_holds_on_power_loss else -self._payout_speed(s.cell, p.freewheel_tau_s)
        elif drive is Drive.RELEASE and p.release_mode == "clutch":
            v = -self._payout_speed(s.force, p.release_tau_s)
        else:
            if drive is Drive.RELEASE:
                v_cmd = -self._payout_speed(s.cell, self.release_tau_override or p.release_tau_s)
            else:
                v_cmd = reference_slope / k_nom + p.loop_gain_per_s * (reference - s.cell) / k_nom
                v_cmd = min(max(v_cmd, -p.payout_speed_max_m_s), p.pull_speed_max_m_s)
            v = s.v + (v_cmd - s.v) * min(1.0, h / p.servo_tau_s)
        x = min(max(s.x + v * h, p.carriage_min_m), p.carriage_max_m)
        if x in (p.carriage_min_m, p.carriage_max_m):
            v = 0.0
        s.x, s.v, s.t = x, v, s.t + h
        s.force = self.true_force(x, v)
        s.cell = self.cell_reading(s.force)
        self.history.append(s.t, s.force)

    def _payout_speed(self, force: float, tau: float) -> float:
        p = self.p
        speed = max(force, 0.0) / (p.nominal_stiffness * tau)
        return min(p.payout_speed_max_m_s, speed + (p.release_min_speed_m_s if force > 0.5 else 0.0))

    def force_at(self, times: np.ndarray) -> np.ndarray:
        """True cord force at table times inside the kept history (linear interpolation)."""
        t, f = self.history.window()
        return np.interp(times, t, f)
