"""labgrid drivers: where each device of a labgrid target is, resolved the labgrid way.

A driver binds the resource in `drivers.labgrid_resources` and, when labgrid activates
it, resolves the address through labgrid's proxy manager (a place exported by an
isolated exporter, `labgrid-exporter -i`, is reached through the SSH forward labgrid
sets up) into the typed link of `drivers.links`. Why they open nothing themselves: a
labgrid target and a rig file then give the same `rigs.rig.RigResources`, and one
connect path (`rigs.rig.connect`) opens every device with the classes the table kind
registered (drivers/kinds.py) — the same safety link, identity check and clean-up
whichever way the rig was described. labgrid's PyVISADriver cannot open SOCKET
resources and its Modbus coil driver uses another Modbus library, hence these.

A labgrid environment file imports this module:

    imports:
      - drivers.labgrid_drivers
"""

from __future__ import annotations

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.util.proxy import proxymanager
from labgrid.util.ssh import sshmanager

from drivers import labgrid_resources  # registers the resources this module binds
from drivers.labgrid_resources import TractionControllerRTU, TractionControllerTCP
from drivers.links import ModbusLink, VisaInstrument
from drivers.units import parse_seconds


def _seconds(value, default: float) -> float:
    """Resource timeouts may be written "2 s" as in a rig file."""
    return parse_seconds(value) if value is not None else default


def _tcp(resource, timeout_s: float, unit_id: int = 1) -> ModbusLink:
    host, port = proxymanager.get_host_and_port(resource, default_port=502)
    return ModbusLink.tcp(host, int(port), unit_id, timeout_s)


@target_factory.reg_driver
@attr.s(eq=False)
class TractionControllerDriver(Driver):
    """The table's controller (whichever protocol its kind registered): `link()` reaches it."""

    bindings = {"interface": {TractionControllerTCP, TractionControllerRTU}}

    @Driver.check_active
    def link(self) -> ModbusLink:
        r = self.interface
        timeout = _seconds(r.timeout_s, 1.0)
        if isinstance(r, TractionControllerRTU):
            return ModbusLink.rtu(r.port, r.unit_id, timeout, r.baudrate, r.parity)
        return _tcp(r, timeout, r.unit_id)


@target_factory.reg_driver
@attr.s(eq=False)
class StimulusModuleDriver(Driver):
    """The stimulus module's relays: `link()` reaches it."""

    bindings = {"relays": "StimulusModuleTCP"}

    @Driver.check_active
    def link(self) -> ModbusLink:
        return _tcp(self.relays, _seconds(self.relays.timeout_s, 1.0), self.relays.unit_id)


@attr.s(eq=False)
class VisaInstrumentDriver(Driver):
    """A reference instrument (not registered itself: the classes below bind one role each):
    `resource()` is its (proxied) VISA resource and dialect."""

    @Driver.check_active
    def resource(self) -> VisaInstrument:
        r = self.instrument
        return VisaInstrument(proxied_visa(r), r.dialect, _seconds(r.timeout_s, 2.0))


@target_factory.reg_driver
@attr.s(eq=False)
class ForceGaugeDriver(VisaInstrumentDriver):
    """The reference gauge of the pulling force."""

    bindings = {"instrument": "ForceGaugeVISA"}


@target_factory.reg_driver
@attr.s(eq=False)
class InclinometerDriver(VisaInstrumentDriver):
    """A flexion-distraction bench's reference inclinometer."""

    bindings = {"instrument": "InclinometerVISA"}


@target_factory.reg_driver
@attr.s(eq=False)
class ObstacleGaugeDriver(VisaInstrumentDriver):
    """The load cell on a flexion-distraction bench's obstacle."""

    bindings = {"instrument": "ObstacleGaugeVISA"}


@target_factory.reg_driver
@attr.s(eq=False)
class PatientSimulatorDriver(Driver):
    """An emulated table's patient simulator: `link()` reaches it."""

    bindings = {"endpoint": "PatientSimulatorTCP"}

    @Driver.check_active
    def link(self) -> ModbusLink:
        return _tcp(self.endpoint, 1.0)


def proxied_visa(r) -> str:
    """A SOCKET resource through the SSH forward an isolated exporter asks for; others as written.

    labgrid's proxy manager wants a host attribute, which a VISA string does not have,
    so this does the same for the host::port inside it.
    """
    parts = r.resource.split("::")
    extra = getattr(r, "extra", None) or {}
    if len(parts) == 4 and parts[3].upper() == "SOCKET" and extra.get("proxy_required"):
        port = sshmanager.request_forward(extra["proxy"], parts[1], int(parts[2]))
        return f"{parts[0]}::localhost::{port}::SOCKET"
    return r.resource


#: the resource classes these drivers bind (registered with labgrid on import)
RESOURCES = tuple(labgrid_resources.__all__)

__all__ = [
    "RESOURCES",
    "TractionControllerDriver",
    "StimulusModuleDriver",
    "ForceGaugeDriver",
    "InclinometerDriver",
    "ObstacleGaugeDriver",
    "PatientSimulatorDriver",
]
