"""Reference force gauges (gcl: Mark-10 style; scpi: load-cell indicator) over VISA.

    with open_gauge("TCPIP::127.0.0.1::5025::SOCKET", "scpi") as gauge:
        newtons = gauge.read()
"""

from __future__ import annotations

from drivers import kinds
from drivers.errors import ConfigError
from drivers.gauge.base import HOST_ARRIVAL, INSTRUMENT, ForceGauge, GaugeIdentity, GaugeTrace
from drivers.gauge.gcl import GclGauge
from drivers.gauge.scpi import ScpiGauge


def open_gauge(resource: str, dialect: str, **kw) -> ForceGauge:
    """Open a gauge of `dialect` (a force dialect registered in drivers/kinds.py) at a VISA
    `resource` (keywords go to the driver)."""
    try:
        cls = kinds.instrument(dialect, "force").driver
    except ConfigError as exc:
        raise ConfigError(f"{resource}: {exc}") from None
    return cls(resource, **kw)


__all__ = [
    "HOST_ARRIVAL",
    "INSTRUMENT",
    "ForceGauge",
    "GaugeIdentity",
    "GaugeTrace",
    "GclGauge",
    "ScpiGauge",
    "open_gauge",
]
