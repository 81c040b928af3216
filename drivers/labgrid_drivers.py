"""labgrid drivers over the project's own device drivers.

labgrid's PyVISADriver cannot open SOCKET resources and its Modbus coil driver uses
another Modbus library, so each device gets a driver here that binds the resource in
`drivers.labgrid_resources` and, when labgrid activates it, opens the project's driver
(the same classes a rig file opens). A labgrid environment file imports this module:

    imports:
      - drivers.labgrid_drivers

Addresses go through labgrid's proxy manager, so a place exported by an isolated
exporter (`labgrid-exporter -i`) is reached through the SSH forward labgrid sets up.
"""

from __future__ import annotations

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.util.proxy import proxymanager
from labgrid.util.ssh import sshmanager

from drivers import labgrid_resources  # registers the resources this module binds
from drivers.controller import TractionController
from drivers.gauge import ForceGauge, open_gauge
from drivers.patient_simulator import PatientSimulator
from drivers.stimulus import StimulusModule
from drivers.units import parse_force, parse_seconds


def _seconds(value, default: float) -> float:
    """Resource timeouts may be written "2 s" as in a rig file."""
    return parse_seconds(value) if value is not None else default


def _close(device) -> None:
    if device is not None:
        try:
            device.close()
        except Exception:  # noqa: BLE001 — deactivation must reach the other devices
            pass


@target_factory.reg_driver
@attr.s(eq=False)
class TractionControllerDriver(Driver):
    """The TCM-1 controller; `controller` is a connected `TractionController`."""

    bindings = {
        "interface": {"TractionControllerTCP", "TractionControllerRTU"},
        "table": {"TractionTable", None},
    }

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.controller: TractionController | None = None
        self._links: list[TractionController] = []

    def _open(self, name: str = "traction controller (test link)") -> TractionController:
        r = self.interface
        limit = parse_force(self.table.safety_limit_n) if self.table is not None else None
        timeout = _seconds(r.timeout_s, 1.0)
        if type(r).__name__ == "TractionControllerRTU":
            return TractionController(transport="rtu", port=r.port, baudrate=r.baudrate, parity=r.parity,
                                      unit_id=r.unit_id, timeout_s=timeout, safety_limit_n=limit, name=name)
        host, port = proxymanager.get_host_and_port(r, default_port=502)
        return TractionController(transport="tcp", host=host, port=int(port), unit_id=r.unit_id,
                                  timeout_s=timeout, safety_limit_n=limit, name=name)

    def on_activate(self):
        self.controller = self._open().connect()

    def on_deactivate(self):
        for link in [self.controller, *self._links]:
            _close(link)
        self.controller, self._links = None, []

    @Driver.check_active
    def open_safety_link(self) -> TractionController | None:
        """A second connection used only to release the table (TCP only: a serial line has one master)."""
        if type(self.interface).__name__ != "TractionControllerTCP":
            return None
        link = self._open("traction controller (safety link)").connect()
        self._links.append(link)
        link.identity()  # a safety link that does not answer is found now, not when it is needed
        return link


@target_factory.reg_driver
@attr.s(eq=False)
class StimulusModuleDriver(Driver):
    """The SIO-1 relays; `module` is a connected `StimulusModule`."""

    bindings = {"relays": "StimulusModuleTCP"}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.module: StimulusModule | None = None

    def on_activate(self):
        host, port = proxymanager.get_host_and_port(self.relays, default_port=502)
        self.module = StimulusModule(host, int(port), self.relays.unit_id, _seconds(self.relays.timeout_s, 1.0)).connect()

    def on_deactivate(self):
        _close(self.module)
        self.module = None


@target_factory.reg_driver
@attr.s(eq=False)
class ForceGaugeDriver(Driver):
    """The reference gauge; `gauge` is an open `ForceGauge` of the resource's dialect.

    The table's time scale is passed on because an emulated gauge counts table time.
    """

    bindings = {"instrument": "ForceGaugeVISA", "table": {"TractionTable", None}}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.gauge: ForceGauge | None = None

    def on_activate(self):
        r = self.instrument
        scale = float(self.table.time_scale) if self.table is not None else 1.0
        self.gauge = open_gauge(proxied_visa(r), r.dialect, timeout_ms=int(_seconds(r.timeout_s, 2.0) * 1000),
                                time_scale=scale)

    def on_deactivate(self):
        _close(self.gauge)
        self.gauge = None


@target_factory.reg_driver
@attr.s(eq=False)
class PatientSimulatorDriver(Driver):
    """An emulated table's patient simulator; `simulator` is a connected `PatientSimulator`."""

    bindings = {"endpoint": "PatientSimulatorTCP"}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.simulator: PatientSimulator | None = None

    def on_activate(self):
        host, port = proxymanager.get_host_and_port(self.endpoint, default_port=502)
        self.simulator = PatientSimulator(host, int(port)).connect()

    def on_deactivate(self):
        _close(self.simulator)
        self.simulator = None


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
    "PatientSimulatorDriver",
]
