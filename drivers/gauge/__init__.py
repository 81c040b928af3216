"""Reference force gauges (gcl: Mark-10 style; scpi: load-cell indicator) over VISA.

    with open_gauge("TCPIP::127.0.0.1::5025::SOCKET", "scpi") as gauge:
        newtons = gauge.read()
"""

from __future__ import annotations

from drivers.errors import ConfigError
from drivers.gauge.base import HOST_ARRIVAL, INSTRUMENT, ForceGauge, GaugeIdentity, GaugeTrace
from drivers.gauge.gcl import GclGauge
from drivers.gauge.scpi import ScpiGauge

DIALECTS: dict[str, type[ForceGauge]] = {"gcl": GclGauge, "scpi": ScpiGauge}


def open_gauge(resource: str, dialect: str, **kw) -> ForceGauge:
    """Open a gauge of `dialect` at a VISA `resource` (keywords go to the driver)."""
    try:
        cls = DIALECTS[dialect.strip().lower()]
    except KeyError:
        raise ConfigError(f"{resource}: unknown gauge dialect {dialect!r}; expected one of {', '.join(DIALECTS)}") from None
    return cls(resource, **kw)


__all__ = [
    "DIALECTS",
    "HOST_ARRIVAL",
    "INSTRUMENT",
    "ForceGauge",
    "GaugeIdentity",
    "GaugeTrace",
    "GclGauge",
    "ScpiGauge",
    "open_gauge",
]
