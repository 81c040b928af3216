"""Mechanics of the emulated table: servo winch, cord, harness and patient.

A physical model rather than a register echo, so that the suites measure something
that can be wrong in the ways a real table is wrong: the force loop has finite
bandwidth and works on the controller's own (slightly wrong) load cell, the winch has
a speed limit and a velocity lag, the emergency release is fast but not instantaneous,
the body is a spring with damping, and the brake decides what a power cut does.

The model is integrated in table time with a fixed step (1 ms) and an exact final
partial step, so an event applied "now" lands at its true instant, not on a grid. The
step itself is compiled (rigs/emulator/kernel.py); this module names its numbers and
holds its state arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from drivers.tcm1 import DeviceKind
from rigs.emulator import kernel
from rigs.emulator.rules import Drive


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
    release_mode: str = "servo"  # "servo" (lagged), "clutch" (no lag: a snap) or "instant" (the cord let go)
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
    # a defect: a release valve whose high-pressure stage is worn — an emergency release
    # from above this force (None: none) decays with these numbers instead
    worn_release_above_n: float | None = None
    worn_release_tau_s: float = 1.3
    worn_release_min_speed_m_s: float = 0.0005

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


def _slot(index: int, doc: str) -> property:
    return property(lambda self: float(self._a[index]), lambda self, value: self._a.__setitem__(index, value), doc=doc)


class MechanicsState:
    """Named view of the kernel's state array (the kernel works on the array itself)."""

    def __init__(self, array: np.ndarray) -> None:
        self._a = array

    t = _slot(kernel.S_T, "table time, s")
    x = _slot(kernel.S_X, "carriage take-up beyond the taut point, m (negative: slack)")
    v = _slot(kernel.S_V, "carriage speed, m/s (positive pulls)")
    force = _slot(kernel.S_FORCE, "true cord force, N")
    cell = _slot(kernel.S_CELL, "the controller's load-cell reading, N")


class ForceHistory:
    """Recent (t, true force) pairs so instruments can sample between steps.

    A ring stored twice over (slot i and i + size hold the same sample), so the newest
    `size` samples are always one contiguous slice: no copy per gauge query."""

    def __init__(self, counts: np.ndarray, size: int = 16384) -> None:
        self.size = size
        self._counts = counts  # the kernel's integer state: I_HIST_N counts appends
        self.t = np.zeros(2 * size)
        self.f = np.zeros(2 * size)

    @property
    def n(self) -> int:
        return int(self._counts[kernel.I_HIST_N])

    def append(self, t: float, f: float) -> None:
        n = self.n
        i = n % self.size
        self.t[i] = self.t[i + self.size] = t
        self.f[i] = self.f[i + self.size] = f
        self._counts[kernel.I_HIST_N] = n + 1

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        if n <= self.size:
            return self.t[:n], self.f[:n]
        i = n % self.size
        return self.t[i : i + self.size], self.f[i : i + self.size]

    @property
    def oldest(self) -> float:
        return float(self.window()[0][0])


class Mechanics:
    """Winch + body state for the kernel; the controller decides `drive` and `reference`."""

    #: standard normals drawn from the table's generator at a time (the cell's noise)
    NOISE_BLOCK = 4096

    def __init__(self, params: TableParams, rng: np.random.Generator) -> None:
        self.p = params
        self.rng = rng
        self.params_array = kernel.params_array(params)
        self.state = np.zeros(kernel.S_SIZE)
        self.state[kernel.S_RELEASE_TAU] = params.release_tau_s
        self.counts = np.zeros(kernel.I_SIZE, dtype=np.int64)
        self.noise = np.empty(self.NOISE_BLOCK)
        self.counts[kernel.I_NOISE_POS] = self.NOISE_BLOCK  # drawn when first needed
        self.s = MechanicsState(self.state)
        self.history = ForceHistory(self.counts)
        self.history.append(0.0, 0.0)
        self._release_tau_override: float | None = None

    #: pull from outside the winch (the patient pulling back, a snag), N at the cord
    external_n = _slot(kernel.S_EXT, "present external pull, N")
    external_target_n = _slot(kernel.S_EXT_TARGET, "where the external pull is heading, N")
    external_rate_n_s = _slot(kernel.S_EXT_RATE, "how fast it gets there, N/s (0: jumps)")
    #: the cord's path lengthened from outside the winch (a flexion-distraction section
    #: moving the ankle cuffs), m; 0 on a traction table
    path_m = _slot(kernel.S_PATH, "present path extension, m")
    path_target_m = _slot(kernel.S_PATH_TARGET, "where the path extension is heading, m")
    path_rate_m_s = _slot(kernel.S_PATH_RATE, "how fast it gets there, m/s (0: jumps)")

    @property
    def _a(self) -> np.ndarray:  # what _slot reads and writes
        return self.state

    @property
    def release_tau_override(self) -> float | None:
        """A defect may make one release slower than the table's own parameter."""
        return self._release_tau_override

    @release_tau_override.setter
    def release_tau_override(self, tau: float | None) -> None:
        self._release_tau_override = tau
        self.state[kernel.S_RELEASE_TAU] = tau or self.p.release_tau_s

    def release_min_speed_override(self, speed: float | None) -> None:
        """A worn valve pays out slower at the end of a release too (None: the table's own).
        The kernel reads the params array on every call, so the change acts from the next cycle."""
        self.params_array[kernel.P_RELEASE_MIN_SPEED] = (
            self.p.release_min_speed_m_s if speed is None else speed)

    def pull_speed_override(self, speed: float | None) -> None:
        """A winch lent less take-up speed for a while (None: the table's own); acts from the
        next cycle, as release_min_speed_override."""
        self.params_array[kernel.P_PULL_MAX] = self.p.pull_speed_max_m_s if speed is None else speed

    def rebase_path(self) -> None:
        """Count the path extension so far as carriage take-up (the cord's force unchanged):
        a slack strap tensioned again starts from no extension, however far the path moved."""
        self.state[kernel.S_X] += self.state[kernel.S_PATH]
        self.state[kernel.S_PATH] = self.state[kernel.S_PATH_TARGET] = 0.0

    def refill_noise(self) -> None:
        self.rng.standard_normal(out=self.noise)
        self.counts[kernel.I_NOISE_POS] = 0

    def kernel_args(self) -> tuple:
        """What every kernel call takes, in its order."""
        return self.state, self.params_array, self.counts, self.history.t, self.history.f, self.noise

    def step(self, h: float, drive: Drive, reference: float, reference_slope: float) -> None:
        """One step of length h (a controller cycle the Python controller runs itself)."""
        if self.counts[kernel.I_NOISE_POS] >= self.NOISE_BLOCK:
            self.refill_noise()
        kernel.mech_step(*self.kernel_args(), h, int(drive), reference, reference_slope)

    def force_at(self, times: np.ndarray) -> np.ndarray:
        """True cord force at table times inside the kept history (linear interpolation)."""
        t, f = self.history.window()
        return np.interp(times, t, f)
