"""Reference inclinometers (dialect `tilt`) over VISA.

    with open_inclinometer("TCPIP::127.0.0.1::5026::SOCKET", "tilt") as tilt:
        reading = tilt.read()          # degrees, X flexion and Y lateral
"""

from __future__ import annotations

from drivers import kinds
from drivers.errors import ConfigError
from drivers.inclinometer.base import AngleReading, AngleTrace, AxisReading, Inclinometer
from drivers.inclinometer.tilt import TiltInclinometer


def open_inclinometer(resource: str, dialect: str, **kw) -> Inclinometer:
    """Open an inclinometer of `dialect` (an angle dialect registered in drivers/kinds.py)
    at a VISA `resource` (keywords go to the driver)."""
    try:
        cls = kinds.instrument(dialect, "angle").driver
    except ConfigError as exc:
        raise ConfigError(f"{resource}: {exc}") from None
    return cls(resource, **kw)


__all__ = ["AngleReading", "AngleTrace", "AxisReading", "Inclinometer", "TiltInclinometer", "open_inclinometer"]
