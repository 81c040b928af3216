"""Unit conversions at the driver edge.

Everything inside traction-rig is SI (newtons, seconds). Devices speak decinewtons,
tenths of a second, milliseconds, pounds-force...; this module is the one place
where those are turned into SI and back, so a unit mistake has one place to live.
"""

from __future__ import annotations

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


def to_newtons(value: float, unit: str) -> float:
    return value * NEWTONS_PER_UNIT[canonical_unit(unit)]


def from_newtons(newtons: float, unit: str) -> float:
    return newtons / NEWTONS_PER_UNIT[canonical_unit(unit)]


# --- TCM-1 register scaling -------------------------------------------------

def n_to_dn(newtons: float) -> int:
    """Newtons to the controller's 0.1 N register steps (rounded to nearest)."""
    return int(round(newtons * 10.0))


def dn_to_n(dn: int) -> float:
    return dn / 10.0


def s_to_ds(seconds: float) -> int:
    """Seconds to the controller's 0.1 s register steps."""
    return int(round(seconds * 10.0))


def ds_to_s(ds: int) -> float:
    return ds / 10.0


def s_to_ms(seconds: float) -> int:
    return int(round(seconds * 1000.0))


def ms_to_s(ms: int) -> float:
    return ms / 1000.0


def to_signed16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def to_unsigned16(value: int) -> int:
    if not -0x8000 <= value <= 0xFFFF:
        raise ValueError(f"{value} does not fit a 16-bit register")
    return value & 0xFFFF
