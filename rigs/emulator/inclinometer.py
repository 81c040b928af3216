"""The emulated reference inclinometer: dialect `tilt` of shared/protocols/inclinometer.md.

A pure device model (no I/O), served by rigs/emulator/gauge_server.py like the gauges.
Parsing, the error queue, SAMP:RATE and the buffered acquisition are the SCPI
instruments' shared model (rigs/emulator/scpi_model.py); here are what make it an
inclinometer: MEAS:ANGL? of both axes, UNIT:ANGL DEG|RAD, SENS:ZERO on both axes (which
*RST keeps), and the ±45° range beyond which a reading is SCPI's not-a-number 9.91E+37.

It measures the section's *true* angles (AngleSource), not the table's encoders, with its
own mounting offset, gain error and seeded noise, so a suite comparing the two sees a
second, independent opinion. Every instant is table time, so an inclinometer on a table
running K times faster samples and time-stamps K times faster too, as the contract says.
"""

from __future__ import annotations

import math

import numpy as np

from rigs.emulator.scpi_model import SCPI_BUFFER_CAP, ScpiInstrumentModel, nr3
from rigs.emulator.source import AngleSource

TILT_UNITS = ("DEG", "RAD")
DEGREES_PER = {"DEG": 1.0, "RAD": 180.0 / math.pi}
#: Decimals of the readings per unit (about 0.001° whatever the unit), then NR3.
TILT_DECIMALS = {"DEG": 3, "RAD": 5}
#: The sensor's range on each axis (degrees, its own angle before the zero).
TILT_RANGE_DEG = 45.0
#: SCPI's not-a-number: what a reading beyond the range is.
TILT_NAN = 9.91e37
TILT_RATE_MIN, TILT_RATE_MAX, TILT_RATE_DEFAULT = 1.0, 1000.0, 100.0
AXIS_COLUMN = {"X": 0, "Y": 1}


class TiltInclinometer(ScpiInstrumentModel):
    """Two-axis SCPI inclinometer; X pitch (flexion), Y roll (lateral), degrees inside."""

    dialect = "tilt"
    NODES = "ANGLe X Y"
    COLUMNS = 2
    RATE_MIN, RATE_MAX, RATE_DEFAULT = TILT_RATE_MIN, TILT_RATE_MAX, TILT_RATE_DEFAULT

    def __init__(
        self,
        source: AngleSource,
        seed: int = 0,
        noise_deg: float = 0.003,
        gain_error: float = 0.0,
        mount_offset_deg: tuple[float, float] = (0.0, 0.0),
        identity: tuple[str, str, str, str] = ("TractionRig", "TLT-2", "EMU-I-0001", "1.0"),
        cal_date: tuple[int, int, int] = (2026, 3, 1),
        cal_due: tuple[int, int, int] = (2027, 3, 1),
        buffer_cap: int = SCPI_BUFFER_CAP,
    ) -> None:
        self.noise_deg = float(noise_deg)
        self.gain = 1.0 + float(gain_error)
        self.mount_offset_deg = np.asarray(mount_offset_deg, dtype=float)
        self.rng = np.random.default_rng(seed)
        self.unit = "DEG"
        self.zero_deg = np.zeros(2)
        super().__init__(source, identity, cal_date, cal_due, buffer_cap)

    # -- the sensor ----------------------------------------------------------------------------
    def _raw(self, t_abs: np.ndarray) -> np.ndarray:
        """The sensor's own angles (n, 2) in degrees: true angle x gain + mounting offset + noise."""
        raw = np.asarray(self.source.angles_at(t_abs), dtype=float).reshape(-1, 2) * self.gain + self.mount_offset_deg
        if self.noise_deg > 0.0:
            raw = raw + self.rng.normal(0.0, self.noise_deg, raw.shape)
        return raw

    def _sample(self, t_abs: np.ndarray) -> np.ndarray:
        """Zeroed degrees, +inf where the sensor is beyond its range."""
        raw = self._raw(t_abs)
        return np.where(np.abs(raw) > TILT_RANGE_DEG, np.inf, raw - self.zero_deg)

    def _reply_converter(self):
        unit, decimals = self.unit, TILT_DECIMALS[self.unit]

        def to_unit(degrees: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore"):
                values = np.round(degrees / DEGREES_PER[unit], decimals) + 0.0
            return np.where(np.isinf(degrees), TILT_NAN, values)

        return to_unit

    def _now_values(self) -> list[str]:
        reply = self._reply_converter()(self._sample(np.array((self._now,))))[0]
        return [nr3(float(v)) for v in reply]

    # -- commands ------------------------------------------------------------------------------
    def _dialect_commands(self, c: dict) -> None:
        none = self.none
        c[("MEASURE", "ANGLE"), True] = none(lambda: ",".join(self._now_values()))
        for axis, column in AXIS_COLUMN.items():
            c[("MEASURE", "ANGLE", axis), True] = none(lambda column=column: self._now_values()[column])
        c[("UNIT", "ANGLE"), False] = self._set_unit
        c[("UNIT", "ANGLE"), True] = none(lambda: self.unit)
        c[("SENSE", "ZERO"), False] = none(self._zero)

    def _reset_settings(self) -> None:
        self.unit = "DEG"  # the zero is kept (the contract: *RST does not clear it)

    def _zero(self) -> None:
        # average a few readings so the zero is not one noise sample
        self.zero_deg = self._raw(np.full(16, self._now)).mean(axis=0)

    def _set_unit(self, params: list[str]) -> None:
        self.unit = self._choice(params, TILT_UNITS)


class FunctionAngleSource:
    """An AngleSource from a closed-form `fn(times) -> (n, 2)` degrees (or a constant
    pair), on any clock with `now()`: for tests, benchmarks and a bench with no table
    model behind the inclinometer. The function may be replaced at any time."""

    HISTORY_S = 16.0

    def __init__(self, fn, clock) -> None:
        self.clock = clock
        self.fn = fn
        self._now = clock.now()

    @property
    def fn(self):
        return self._fn

    @fn.setter
    def fn(self, fn) -> None:
        if callable(fn):
            self._fn = fn
        else:
            pair = np.asarray(fn, dtype=float).reshape(1, 2)
            self._fn = lambda t: np.repeat(pair, np.size(t), axis=0)

    def sync(self) -> float:
        self._now = self.clock.now()
        return self._now

    def angles_at(self, times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=float)
        return np.asarray(self._fn(times), dtype=float).reshape(len(times), 2)

    def history_start(self) -> float:
        return max(0.0, self._now - self.HISTORY_S)
