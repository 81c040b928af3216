"""Where a device is: the typed addresses every way of describing a rig produces.

A rig file, an emulator's endpoints and a labgrid target each say where the controller,
the stimulus module and the instruments are; each turns what it says into these, and
one connect path (`rigs.rig.connect`) opens devices from them. Why typed and here:
the drivers open themselves from a link, so no caller builds a driver's arguments from
a dict of its own shape, and the heartbeat process gets the same link as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

from drivers.tcm1 import RTU_BAUDRATE, RTU_PARITY


@dataclass(frozen=True)
class ModbusLink:
    """A Modbus device: TCP (`host`, `port`) or RTU (`port` is the serial device)."""

    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: int | str = 502
    unit_id: int = 1
    timeout_s: float = 1.0
    baudrate: int = RTU_BAUDRATE
    parity: str = RTU_PARITY

    @classmethod
    def tcp(cls, host: str, port: int, unit_id: int = 1, timeout_s: float = 1.0) -> "ModbusLink":
        return cls("tcp", host, int(port), unit_id, timeout_s)

    @classmethod
    def rtu(cls, device: str, unit_id: int = 1, timeout_s: float = 1.0, baudrate: int = RTU_BAUDRATE,
            parity: str = RTU_PARITY) -> "ModbusLink":
        return cls("rtu", "", device, unit_id, timeout_s, baudrate, parity)

    @property
    def address(self) -> str:
        """How a message names the device, e.g. modbus-tcp://10.0.0.5:502 unit 1."""
        if self.transport == "tcp":
            return f"modbus-tcp://{self.host}:{self.port} unit {self.unit_id}"
        return f"modbus-rtu://{self.port} unit {self.unit_id}"

    def at(self, host: str, port: int) -> "ModbusLink":
        """The same device settings on another TCP address (a second network path to it)."""
        return replace(self, host=host, port=int(port))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ModbusLink":
        return cls(**data)


@dataclass(frozen=True)
class VisaInstrument:
    """A reference instrument: its VISA resource and the dialect it speaks."""

    resource: str
    dialect: str
    timeout_s: float = 2.0


__all__ = ["ModbusLink", "VisaInstrument"]
