"""The reference inclinometer as the rest of traction-rig sees it.

An inclinometer clamped to the caudal section of a flexion-distraction table reports the
section's angles independently of the table's encoders, as the force gauge reports force
independently of the load cell. Angles are in degrees (drivers/units.py says why), X the
flexion axis (+ lowered), Y the lateral axis (+ towards the patient's left).

Beyond its range an inclinometer answers SCPI's not-a-number (9.91E+37): such a reading
is NaN here, with the reason beside it, never a number a suite could take for an angle.
Buffered traces carry the instrument's own timestamps (table clock), mapped onto the
host's clock exactly as the SCPI force gauge's are (drivers/buffered.py).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numpy as np

from drivers.buffered import instrument_to_host_ns
from drivers.gauge.base import INSTRUMENT
from drivers.instrument import ReferenceInstrument

AXES = ("X", "Y")
#: what an axis beyond the instrument's range reads as (SCPI's not-a-number, 9.91E+37)
OUT_OF_RANGE_REASON = "beyond the inclinometer's range (SCPI not-a-number 9.91E+37)"


@dataclass(frozen=True)
class AxisReading:
    """One axis: degrees, or NaN with `reason` saying why there is no number."""

    deg: float
    reason: str = ""

    @property
    def valid(self) -> bool:
        return not math.isnan(self.deg)


@dataclass(frozen=True)
class AngleReading:
    """One reading of both axes (X flexion, Y lateral), degrees."""

    x: AxisReading
    y: AxisReading

    @property
    def x_deg(self) -> float:
        return self.x.deg

    @property
    def y_deg(self) -> float:
        return self.y.deg

    @property
    def reason(self) -> str:
        """Why an axis is NaN ('' when both are numbers)."""
        return "; ".join(f"{axis} {r.reason}" for axis, r in zip(AXES, (self.x, self.y)) if r.reason)


@dataclass
class AngleTrace:
    """A buffered acquisition of both axes.

    `t` is the instrument's time since INIT in the *table* clock (K = `time_scale` table
    seconds per wall second); `host_t0_ns` is the host perf_counter_ns at which instrument
    time 0 happened, within +-`mapping_uncertainty_s` (wall). `x_deg`/`y_deg` are NaN where
    the instrument was out of range (`out_of_range` counts those samples, either axis).
    """

    t: np.ndarray
    x_deg: np.ndarray
    y_deg: np.ndarray
    host_t0_ns: int
    time_scale: float = 1.0
    rate_hz: float = 0.0  # nominal rate, instrument (table) clock
    mapping_uncertainty_s: float = 0.0
    resource: str = ""
    time_base: str = INSTRUMENT

    def __len__(self) -> int:
        return len(self.t)

    @property
    def out_of_range(self) -> int:
        return int(np.count_nonzero(np.isnan(self.x_deg) | np.isnan(self.y_deg)))

    @property
    def reason(self) -> str:
        """Why some samples are NaN ('' when none is)."""
        n = self.out_of_range
        return f"{n} of {len(self)} samples {OUT_OF_RANGE_REASON}" if n else ""

    def host_ns(self) -> np.ndarray:
        """Each sample's instant on the host's perf_counter_ns scale (float)."""
        return instrument_to_host_ns(self.t, self.host_t0_ns, self.time_scale)

    def head(self, n: int) -> "AngleTrace":
        return AngleTrace(self.t[:n], self.x_deg[:n], self.y_deg[:n], self.host_t0_ns, self.time_scale,
                          self.rate_hz, self.mapping_uncertainty_s, self.resource, self.time_base)


class Inclinometer(ReferenceInstrument):
    """A two-axis reference inclinometer: degrees, times in seconds (table clock)."""

    noun = "inclinometer"
    default_rate_hz = 100.0

    @abc.abstractmethod
    def read(self) -> AngleReading:
        """One immediate reading of both axes."""

    @abc.abstractmethod
    def read_axis(self, axis: str) -> AxisReading:
        """One immediate reading of axis X or Y."""

    @abc.abstractmethod
    def zero(self) -> None:
        """The present angles become 0 on both axes (the bench zeroes at neutral)."""

    @abc.abstractmethod
    def stop_stream(self) -> AngleTrace: ...
