"""Where an emulated table's devices are: what `rig emulate` prints, typed.

The emulator process builds an `Endpoints` when its servers are up and prints its JSON
form as one line; `rigs.rig` reads that line back into the same object and opens the rig
from it, and the run record keeps the JSON form (run-start's `emulator`). Why one class:
the line is read by other processes and the record by reports, so its shape is stated
here once — `to_json` gives back exactly the line the emulator printed, key order
included — and nobody reshapes a dict of their own to reach a port.

A value that is None is not in the JSON: a serial line the user wired has no client end
the emulator knows, and an attached emulator's record says only what its rig file says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING

from drivers.links import ModbusLink

if TYPE_CHECKING:
    from rigs.config import RigConfig


def _json(obj) -> dict:
    """A dataclass's fields in declaration order, nested ones as JSON, None left out."""
    out: dict = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        if is_dataclass(value):
            value = value.to_json()
        elif isinstance(value, dict):
            value = {k: v.to_json() if is_dataclass(v) else v for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


@dataclass(frozen=True)
class TcpEndpoint:
    """A Modbus TCP server of the emulator (controller, stimulus module, patient simulator)."""

    host: str
    port: int
    unit_id: int | None = None

    transport = "tcp"

    def link(self, unit_id: int | None = None, timeout_s: float = 1.0) -> ModbusLink:
        """How a client reaches it; `unit_id`: the rig file's, else the one served."""
        return ModbusLink.tcp(self.host, self.port, unit_id or self.unit_id or 1, timeout_s)

    def to_json(self) -> dict:
        return _json(self)

    @classmethod
    def from_json(cls, data: dict) -> "TcpEndpoint":
        return cls(data["host"], data["port"], data.get("unit_id"))


@dataclass(frozen=True)
class SerialEndpoint:
    """A device served on a serial line: the controller (Modbus RTU) or the gcl gauge.

    `emulator_port` is the end the emulator holds; `port` (and for a gauge `resource`) is
    what a client opens — the far end of a null-modem the emulator made. With a line the
    user wired, the client's end is the user's cable: `port` and `resource` are None.
    """

    transport: str  # "rtu" (Modbus) or "serial" (an instrument's line protocol)
    baudrate: int | None = None
    parity: str | None = None
    unit_id: int | None = None
    emulator_port: str | None = None
    port: str | None = None
    resource: str | None = None

    def link(self, unit_id: int | None = None, timeout_s: float = 1.0) -> ModbusLink:
        if self.port is None:
            raise ValueError(f"the emulator serves on {self.emulator_port}; the client's end is the cable's other end")
        return ModbusLink.rtu(self.port, unit_id or self.unit_id or 1, timeout_s, self.baudrate, self.parity)

    def to_json(self) -> dict:
        return _json(self)

    @classmethod
    def from_json(cls, data: dict) -> "SerialEndpoint":
        return cls(**data)


@dataclass(frozen=True)
class SocketInstrument:
    """An instrument served on a raw socket: `resource` is its VISA SOCKET resource."""

    port: int | None
    resource: str

    def to_json(self) -> dict:
        return _json(self)

    @classmethod
    def from_json(cls, data: dict) -> "SocketInstrument":
        return cls(data.get("port"), data["resource"])


Controller = TcpEndpoint | SerialEndpoint
Instrument = SocketInstrument | SerialEndpoint


def _controller_json(c: Controller) -> dict:
    return {"transport": "tcp", **c.to_json()} if isinstance(c, TcpEndpoint) else c.to_json()


def _controller(data: dict) -> Controller:
    if data.get("transport", "tcp") == "tcp":
        return TcpEndpoint.from_json(data)
    return SerialEndpoint.from_json(data)


def _instrument(data: dict) -> Instrument:
    return SerialEndpoint.from_json(data) if data.get("transport") == "serial" else SocketInstrument.from_json(data)


@dataclass(frozen=True)
class Endpoints:
    """Every device of one emulated table and the settings it was started with.

    `gauges` holds one instrument per dialect (the rig file's `gauge.dialect` picks one);
    `attached` is True for an emulator the rig file says is already running (only what
    the rig file knows is then filled in).
    """

    controller: Controller
    stimulus: TcpEndpoint
    gauges: dict[str, Instrument]
    patient_simulator: TcpEndpoint | None = None
    attached: bool | None = None
    kind: str | None = None
    seed: int | None = None
    time_scale: float | None = None
    faults: tuple[str, ...] | None = None
    wear: float | None = None
    serial: str | None = None
    pid: int | None = None
    inclinometer: Instrument | None = None  # a flexion-distraction bench's tilt inclinometer
    obstacle_gauges: dict[str, Instrument] | None = None  # the obstacle's load cell, one per force dialect

    #: the order of the printed line's keys (that line is read by other processes as is;
    #: not annotated, so not a field)
    _ORDER = ("attached", "kind", "seed", "time_scale", "faults", "wear", "serial", "pid", "controller", "stimulus",
              "patient_simulator", "gauges", "inclinometer", "obstacle_gauges")

    def gauge(self, dialect: str) -> Instrument:
        try:
            return self.gauges[dialect]
        except KeyError:
            raise ValueError(f"the emulator serves no {dialect} gauge (it serves {', '.join(self.gauges)})") from None

    def to_json(self) -> dict:
        flat = _json(self)
        flat["controller"] = _controller_json(self.controller)
        return {key: flat[key] for key in self._ORDER if key in flat}

    def line(self) -> str:
        """The one line `rig emulate` prints."""
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: dict) -> "Endpoints":
        faults = data.get("faults")
        return cls(
            controller=_controller(data["controller"]),
            stimulus=TcpEndpoint.from_json(data["stimulus"]),
            gauges={name: _instrument(g) for name, g in data["gauges"].items()},
            patient_simulator=TcpEndpoint.from_json(data["patient_simulator"]) if "patient_simulator" in data else None,
            attached=data.get("attached"),
            kind=data.get("kind"),
            seed=data.get("seed"),
            time_scale=data.get("time_scale"),
            faults=tuple(faults) if faults is not None else None,
            wear=data.get("wear"),
            serial=data.get("serial"),
            pid=data.get("pid"),
            inclinometer=_instrument(data["inclinometer"]) if "inclinometer" in data else None,
            obstacle_gauges=({name: _instrument(g) for name, g in data["obstacle_gauges"].items()}
                             if "obstacle_gauges" in data else None),
        )

    @classmethod
    def from_line(cls, line: str) -> "Endpoints":
        return cls.from_json(json.loads(line))

    @classmethod
    def attached_to(cls, config: "RigConfig") -> "Endpoints":
        """What the record says of an emulator already running at `config`'s addresses."""
        c, s, g = config.controller, config.stimulus, config.gauge
        if c.transport == "tcp":
            controller: Controller = TcpEndpoint(c.host, c.port)
        else:
            controller = SerialEndpoint("rtu", c.baudrate, c.parity, port=c.serial_port)
        sim = None
        if config.emulated.patient_simulator:
            host, port = config.emulated.patient_simulator.rsplit(":", 1)
            sim = TcpEndpoint(host, int(port))
        tilt, obstacle = config.inclinometer, config.obstacle
        return cls(controller, TcpEndpoint(s.host, s.port), {g.dialect: SocketInstrument(None, g.resource)}, sim,
                   attached=True, seed=config.emulated.seed, time_scale=config.time_scale,
                   inclinometer=SocketInstrument(None, tilt.resource) if tilt is not None else None,
                   obstacle_gauges=({obstacle.gauge.dialect: SocketInstrument(None, obstacle.gauge.resource)}
                                    if obstacle is not None else None))


__all__ = ["Endpoints", "SerialEndpoint", "SocketInstrument", "TcpEndpoint"]
