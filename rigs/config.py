"""Rig files: what is connected where on one bench, validated when loaded.

A rig file is the only place a bench is described. Loading it either gives a fully
typed `RigConfig` or raises `ConfigError` with one line naming the file, the key and
what is expected — a test engineer should never see a pydantic or YAML traceback.
Forces may be written as a number (newtons) or as a string with a unit ("50 lbF").
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from drivers import kinds
from drivers.errors import ConfigError
from drivers.units import parse_force, parse_seconds

RIGS_DIR = Path(__file__).resolve().parent
DEFAULT_RIG = RIGS_DIR / "emulated-lumbar.yaml"

Newtons = Annotated[float, BeforeValidator(parse_force), Field(ge=0)]
Seconds = Annotated[float, BeforeValidator(parse_seconds), Field(gt=0)]

_VISA_SOCKET = re.compile(r"^TCPIP\d*::[^:]+::\d{1,5}::SOCKET$", re.IGNORECASE)
_VISA_ASRL = re.compile(r"^ASRL(\d+|/dev/[\w./-]+|COM\d+)::INSTR$", re.IGNORECASE)
_ENDPOINT = r"^[^:\s]+:\d{1,5}$"
_VISA_INSTR = re.compile(r"^(TCPIP\d*::[^:]+(::[\w.]+)?::INSTR|USB\d*::.+::INSTR|GPIB\d*::\d+(::\d+)?::INSTR)$", re.IGNORECASE)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControllerConfig(Strict):
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = Field(19200, gt=0)
    parity: Literal["E", "N", "O"] = "E"
    unit_id: int = Field(1, ge=1, le=247)
    timeout_s: Seconds = 1.0
    #: "host:port" of the link kept for making the table safe, and of the heartbeat process's
    #: link (Modbus TCP only; default: host/port, or the emulator's port). Each link may then
    #: take its own path: a second network port of the controller, or a fault-injecting proxy
    #: per link (`rig faults links`, docs/link-fault-matrix.md)
    safety_link: str | None = Field(None, pattern=_ENDPOINT)
    heartbeat_link: str | None = Field(None, pattern=_ENDPOINT)

    @model_validator(mode="after")
    def _links(self):
        if self.transport != "tcp" and (self.safety_link or self.heartbeat_link):
            raise ValueError("safety_link/heartbeat_link: only a tcp controller has more than one link")
        return self

    def link(self, which: Literal["safety", "heartbeat"]) -> tuple[str, int] | None:
        """(host, port) of the safety or heartbeat link when the rig file routes it elsewhere."""
        text = self.safety_link if which == "safety" else self.heartbeat_link
        if not text:
            return None
        host, port = text.rsplit(":", 1)
        return host, int(port)


class StimulusConfig(Strict):
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    unit_id: int = Field(1, ge=1, le=247)
    timeout_s: Seconds = 1.0


class Calibration(Strict):
    certificate: str = Field(min_length=1)
    date: dt.date
    due: dt.date
    expanded_uncertainty_n: Newtons = Field(description="expanded uncertainty U (k=2) of a reading, N")
    coverage_factor: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _order(self):
        if self.due <= self.date:
            raise ValueError(f"due {self.due} must be after date {self.date}")
        return self

    def expired(self, on: dt.date | None = None) -> bool:
        return (on or dt.date.today()) > self.due


class GaugeConfig(Strict):
    resource: str | None = Field(None, description="VISA resource string; omitted on an emulated rig")
    dialect: str = Field(description="a force dialect registered in drivers/kinds.py (gcl, scpi)")
    model: str = Field(min_length=1)
    serial: str = Field(min_length=1)
    capacity_n: Newtons
    resolution_n: Newtons
    calibration: Calibration
    timeout_s: Seconds = 2.0

    @field_validator("dialect")
    @classmethod
    def _dialect(cls, d: str) -> str:
        if d not in kinds.dialects("force"):
            raise ValueError(f"{d!r} is not a force gauge dialect; expected one of {', '.join(kinds.dialects('force'))}")
        return d

    @field_validator("resource")
    @classmethod
    def _resource(cls, r: str | None) -> str | None:
        if r is not None and not (_VISA_SOCKET.match(r) or _VISA_ASRL.match(r) or _VISA_INSTR.match(r)):
            raise ValueError(
                f"{r!r} is not a VISA resource string; expected e.g. "
                "'TCPIP::192.168.1.20::5025::SOCKET' or 'ASRL/dev/ttyUSB0::INSTR'"
            )
        return r


class TableConfig(Strict):
    kind: str = Field(description="a table kind registered in drivers/kinds.py (lumbar, cervical)")
    model: str = Field(min_length=1)
    serial: str = Field(min_length=1)
    specification: str = Field(min_length=1, description="specification name (lumbar, cervical) or file")

    @field_validator("kind")
    @classmethod
    def _kind(cls, k: str) -> str:
        if k not in kinds.table_kinds():
            raise ValueError(f"{k!r} is not a table kind; expected one of {', '.join(kinds.table_kinds())}")
        return k


class EmulationConfig(Strict):
    seed: int = Field(0, ge=0)
    faults: list[str] = Field(default_factory=list)
    #: connect to an emulator already running at this file's addresses (e.g. one a labgrid
    #: exporter publishes) instead of starting one; its seed and faults were set when it started
    attach: bool = False
    #: an attached emulator's patient-simulator side channel, "host:port"
    patient_simulator: str | None = Field(None, pattern=r"^[^:\s]+:\d{1,5}$")
    #: the emulator makes pty null-modems: the controller speaks Modbus RTU (controller.parity)
    #: and the gcl gauge is an ASRL resource, as on a bench wired by serial (docs/transports.md)
    serial_lines: bool = False


class RigConfig(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    time_scale: float = Field(1.0, gt=0, le=100)
    safety_limit_n: Newtons
    emulated: EmulationConfig | None = None
    controller: ControllerConfig
    stimulus: StimulusConfig
    gauge: GaugeConfig
    table: TableConfig
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self):
        if self.emulated is None and self.time_scale != 1.0:
            raise ValueError("time_scale: a real bench runs at 1.0; only an emulated rig may be faster")
        if self.emulated is not None and self.emulated.attach and self.emulated.faults:
            raise ValueError("emulated.faults: an attached emulator's faults are set when it starts (rig emulate --fault)")
        if self.emulated is not None and not self.emulated.attach:
            self._emulated_transports()
        if self.emulated is None or self.emulated.attach:
            c = self.controller
            if c.transport == "tcp" and (not c.host or not c.port):
                raise ValueError("controller: a tcp controller needs host and port")
            if c.transport == "rtu" and not c.serial_port:
                raise ValueError("controller: an rtu controller needs serial_port (e.g. /dev/ttyUSB1)")
            if not self.stimulus.host or not self.stimulus.port:
                raise ValueError("stimulus: needs host and port")
            if not self.gauge.resource:
                raise ValueError("gauge: needs resource (VISA resource string)")
        if self.safety_limit_n <= 0:
            raise ValueError("safety_limit_n must be above 0 N")
        return self

    def _emulated_transports(self) -> None:
        """A started emulator serves RTU and a serial gauge only on the lines it makes."""
        c, lines = self.controller, self.emulated.serial_lines
        if lines and c.transport != "rtu":
            raise ValueError("controller.transport: an emulated rig with serial_lines has an rtu controller")
        if not lines and c.transport == "rtu":
            raise ValueError("controller.transport: an emulated rtu controller needs emulated.serial_lines: true")
        if lines and self.gauge.dialect != "gcl":
            raise ValueError("gauge.dialect: only the gcl gauge is served on a serial line (serial_lines)")
        if lines and (c.serial_port or self.gauge.resource):
            raise ValueError("emulated.serial_lines: the emulator picks the lines; remove controller.serial_port "
                             "and gauge.resource")

    @property
    def is_emulated(self) -> bool:
        return self.emulated is not None


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "(top level)"


def _explain(error: dict) -> str:
    kind, msg = error.get("type", ""), error.get("msg", "")
    if kind == "extra_forbidden":
        return "unknown key (remove it or check its spelling)"
    if kind == "missing":
        return "missing (required)"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    inp = error.get("input")
    if kind not in ("value_error",) and inp is not None and not isinstance(inp, dict):
        msg += f", got {inp!r}"
    return msg


def rig_from_dict(data: dict, source: str | Path = "<rig>") -> RigConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of rig settings at the top level")
    try:
        return RigConfig(**data, source=Path(source) if source != "<rig>" else None)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_loc(first['loc'])}: {_explain(first)}{more}") from None
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_rig(path: str | Path | None = None) -> RigConfig:
    path = Path(path) if path else DEFAULT_RIG
    if not path.exists() and not path.suffix and (RIGS_DIR / f"{path}.yaml").exists():
        path = RIGS_DIR / f"{path}.yaml"  # `--rig emulated-cervical`
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read rig file ({exc.strerror}); pass an existing file to --rig") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return rig_from_dict(data, path)
