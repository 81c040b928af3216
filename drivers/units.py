"""Unit conversions at the driver edge.

Everything inside traction-rig is SI (newtons, seconds). Devices speak decinewtons,
tenths of a second, milliseconds, pounds-force...; this module is the one place
where those are turned into SI and back, so a unit mistake has one place to live.

Angles are the one exception to SI, by choice: inside traction-rig an angle is in
degrees (speeds in °/s, accelerations in °/s²), never radians. Why: every figure a
flexion-distraction specification states (depths, tolerances, stopping travel), every
register of FDC-1 (0.1°, `d°`) and the inclinometer after `*RST` are in degrees, so
degrees keep the numbers a test engineer reads equal to the numbers in the standard.
d° exists only here and in the driver that reads the registers; an inclinometer left in
RAD is converted here too.
"""

from __future__ import annotations

import math
import re

#: Newtons per one unit of each force unit a gauge may display.
NEWTONS_PER_UNIT: dict[str, float] = {
    "N": 1.0,
    "mN": 1e-3,
    "kN": 1e3,
    "lbF": 4.4482216152605,
    "kgF": 9.80665,
    "gF": 9.80665e-3,
    "ozF": 0.27801385095378125,
}

_ALIASES = {name.upper(): name for name in NEWTONS_PER_UNIT}


def canonical_unit(unit: str) -> str:
    """Map a gauge's unit spelling ('LBF', 'lbf', 'N') to the canonical one."""
    try:
        return _ALIASES[unit.strip().upper()]
    except KeyError:
        raise ValueError(
            f"unknown force unit {unit!r}; expected one of {', '.join(NEWTONS_PER_UNIT)}"
        ) from None


_QUANTITY = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([A-Za-z]+)\s*$")
#: Seconds per one unit of each duration unit a rig description may use.
SECONDS_PER_UNIT: dict[str, float] = {"s": 1.0, "ms": 1e-3, "min": 60.0}


def parse_quantity(value, units: dict[str, float], dimension: str) -> float:
    """A number (already SI) or text such as '50 lbF' / '200 ms' from a rig description, in SI."""
    if isinstance(value, bool):
        raise ValueError(f"expected a {dimension}, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _QUANTITY.match(value)
        if m:
            number, unit = float(m.group(1)), m.group(2)
            for name, factor in units.items():
                if unit.lower() == name.lower():
                    return number * factor
            raise ValueError(
                f"{value!r} is not a {dimension}; write a number or use one of {', '.join(units)}"
            )
    raise ValueError(f"expected a {dimension} (number or e.g. '10 {next(iter(units))}'), got {value!r}")


def parse_force(value) -> float:
    """Newtons from a number or text with any gauge force unit."""
    return parse_quantity(value, NEWTONS_PER_UNIT, "force")


def parse_seconds(value) -> float:
    return parse_quantity(value, SECONDS_PER_UNIT, "duration")


def to_newtons(value: float, unit: str) -> float:
    return value * NEWTONS_PER_UNIT[canonical_unit(unit)]


def from_newtons(newtons: float, unit: str) -> float:
    return newtons / NEWTONS_PER_UNIT[canonical_unit(unit)]


# --- TCM-1 register scaling -------------------------------------------------
# Both sides of the link convert here: the driver reading the registers and the
# emulated controller filling them.

#: Register steps per newton (forces in dN, rates in dN/s) and per second (times in 0.1 s).
DN_PER_N = 10
DS_PER_S = 10
#: Register steps (0.1 mm, POSITION) per metre.
DMM_PER_M = 10_000


def n_to_dn(newtons: float) -> int:
    """Newtons to the controller's 0.1 N register steps (rounded to nearest); N/s to dN/s alike."""
    return int(round(newtons * DN_PER_N))


def dn_to_n(dn: int) -> float:
    """The controller's 0.1 N register steps to newtons; dN/s to N/s alike."""
    return dn / DN_PER_N


def whole_newtons(dn: int) -> int:
    """The whole newtons in a register of 0.1 N steps (what a check by whole newtons compares)."""
    return dn // DN_PER_N


def s_to_ds(seconds: float) -> int:
    """Seconds to the controller's 0.1 s register steps."""
    return int(round(seconds * DS_PER_S))


def ds_to_s(ds: int) -> float:
    return ds / DS_PER_S


def s_to_ms(seconds: float) -> int:
    return int(round(seconds * 1000.0))


def ms_to_s(ms: int) -> float:
    return ms / 1000.0


def elapsed_ms(seconds: float) -> int:
    """Whole milliseconds elapsed: a clock shows a millisecond once it has passed, so
    UPTIME_MS truncates where a setting would round."""
    return int(seconds * 1000.0)


def m_to_dmm(metres: float) -> int:
    """Metres to POSITION's 0.1 mm steps (rounded to nearest)."""
    return int(round(metres * DMM_PER_M))


def dmm_to_m(dmm: int) -> float:
    return dmm / DMM_PER_M


# --- FDC-1 angle scaling ----------------------------------------------------
#: Register steps per degree (angles in 0.1°, speeds in 0.1 °/s, accelerations in 0.1 °/s²).
DDEG_PER_DEG = 10
#: Degrees per one unit of each angle unit an inclinometer may report (UNIT:ANGL).
DEGREES_PER_UNIT: dict[str, float] = {"DEG": 1.0, "RAD": 180.0 / math.pi}


def deg_to_ddeg(degrees: float) -> int:
    """Degrees to FDC-1's 0.1° register steps (rounded to nearest); °/s to 0.1 °/s and °/s²
    to 0.1 °/s² alike. Signed: store with `signed16_register`."""
    return int(round(degrees * DDEG_PER_DEG))


def ddeg_to_deg(ddeg: int) -> float:
    """FDC-1's 0.1° register steps (already signed) to degrees; 0.1 °/s to °/s alike."""
    return ddeg / DDEG_PER_DEG


def to_degrees(value: float, unit: str) -> float:
    """An inclinometer reading in `unit` (DEG or RAD, any case) as degrees."""
    try:
        return value * DEGREES_PER_UNIT[unit.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown angle unit {unit!r}; expected one of {', '.join(DEGREES_PER_UNIT)}") from None


def from_degrees(degrees: float, unit: str) -> float:
    return degrees / DEGREES_PER_UNIT[unit.strip().upper()]


def to_signed16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def to_unsigned16(value: int) -> int:
    if not -0x8000 <= value <= 0xFFFF:
        raise ValueError(f"{value} does not fit a 16-bit register")
    return value & 0xFFFF


def signed16_register(value: int) -> int:
    """A signed value (ACTUAL_FORCE, POSITION) as its register word, held at the ends of
    the signed range as a device's converter is rather than wrapped to the other sign."""
    return min(max(value, -0x8000), 0x7FFF) & 0xFFFF
