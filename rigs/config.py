"""Rig files: what is connected where on one bench, validated when loaded.

A rig file is the only place a bench is described. Loading it either gives a fully
typed `RigConfig` or raises `ConfigError` with one line naming the file, the key and
what is expected — a test engineer should never see a pydantic or YAML traceback.
Forces may be written as a number (newtons) or as a string with a unit ("50 lbF"),
angles as a number (degrees) or with a unit ("0.1 rad").

Which reference instruments a bench carries beyond its force gauge follows from the
protocol its table kind speaks (`SECTIONS`, keyed by the protocol drivers/kinds.py
registers): a flexion-distraction table moves a section by angle, so its bench has the
inclinometer, and may have the obstacle with its own load cell; a traction table has
neither, and a section it cannot use is one line rather than silently ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from drivers import kinds
from drivers.errors import ConfigError
from drivers.units import DEGREES_PER_UNIT, parse_force, parse_quantity, parse_seconds

if TYPE_CHECKING:
    from drivers.flexion_controller import FlexionIdentity

RIGS_DIR = Path(__file__).resolve().parent
DEFAULT_RIG = RIGS_DIR / "emulated-lumbar.yaml"

Newtons = Annotated[float, BeforeValidator(parse_force), Field(ge=0)]
Seconds = Annotated[float, BeforeValidator(parse_seconds), Field(gt=0)]
#: an angle in degrees, signed; "0.1 rad" is converted by drivers/units.py's table of angle units
Degrees = Annotated[float, BeforeValidator(lambda v: parse_quantity(v, DEGREES_PER_UNIT, "plane angle"))]
CoverageFactor = Annotated[float, Field(gt=0, description="k of the expanded uncertainty")]

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


class CalibrationPeriod(Strict):
    """A reference instrument's certificate and the days it is valid: the one date rule
    and the one expiry rule of every calibration, whatever the instrument measures."""

    certificate: str = Field(min_length=1)
    date: dt.date
    due: dt.date

    @model_validator(mode="after")
    def _order(self):
        if self.due <= self.date:
            raise ValueError(f"due {self.due} must be after date {self.date}")
        return self

    def expired(self, on: dt.date | None = None) -> bool:
        return (on or dt.date.today()) > self.due


class Calibration(CalibrationPeriod):
    """A force gauge's calibration (its keys and their order are part of every run record)."""

    expanded_uncertainty_n: Newtons = Field(description="expanded uncertainty U (k=2) of a reading, N")
    coverage_factor: CoverageFactor = 2.0


class AngleCalibration(CalibrationPeriod):
    """An inclinometer's calibration: the uncertainty of an angle reading, in degrees."""

    expanded_uncertainty_deg: Degrees = Field(gt=0, description="expanded uncertainty U (k=2) of a reading, °")
    coverage_factor: CoverageFactor = 2.0


def _visa_resource(r: str | None) -> str | None:
    """A VISA resource string a reference instrument is reached at (None: the emulator's)."""
    if r is not None and not (_VISA_SOCKET.match(r) or _VISA_ASRL.match(r) or _VISA_INSTR.match(r)):
        raise ValueError(
            f"{r!r} is not a VISA resource string; expected e.g. "
            "'TCPIP::192.168.1.20::5025::SOCKET' or 'ASRL/dev/ttyUSB0::INSTR'"
        )
    return r


def _dialect_of(quantity: str, noun: str):
    """A validator: the dialect is one registered in drivers/kinds.py for `quantity`."""

    def check(d: str) -> str:
        known = kinds.dialects(quantity)
        if d not in known:
            raise ValueError(f"{d!r} is not {noun} dialect; expected one of {', '.join(known)}")
        return d

    return check


class GaugeConfig(Strict):
    resource: str | None = Field(None, description="VISA resource string; omitted on an emulated rig")
    dialect: str = Field(description="a force dialect registered in drivers/kinds.py (gcl, scpi)")
    model: str = Field(min_length=1)
    serial: str = Field(min_length=1)
    capacity_n: Newtons
    resolution_n: Newtons
    calibration: Calibration
    timeout_s: Seconds = 2.0

    _dialect = field_validator("dialect")(_dialect_of("force", "a force gauge"))
    _resource = field_validator("resource")(_visa_resource)


class InclinometerConfig(Strict):
    """The reference inclinometer clamped to the moving section (shared/protocols/inclinometer.md)."""

    resource: str | None = Field(None, description="VISA resource string; omitted on an emulated rig")
    dialect: str = Field(description="an angle dialect registered in drivers/kinds.py (tilt)")
    model: str = Field(min_length=1)
    serial: str = Field(min_length=1)
    range_deg: Degrees = Field(gt=0, le=180, description="readings are valid within ±range_deg on each axis")
    resolution_deg: Degrees = Field(gt=0)
    calibration: AngleCalibration
    timeout_s: Seconds = 2.0

    _dialect = field_validator("dialect")(_dialect_of("angle", "an inclinometer"))
    _resource = field_validator("resource")(_visa_resource)

    @model_validator(mode="after")
    def _resolution(self):
        if self.resolution_deg >= self.range_deg:
            raise ValueError(f"resolution_deg {self.resolution_deg:g}° must be below range_deg {self.range_deg:g}°")
        return self


class ObstacleConfig(Strict):
    """The padded load cell the stimulus module's slide (SIO-1 OBSTACLE, coil 4) puts in the
    moving section's path, and the angle at which the section meets it. Its sign is the
    axis's (flexion: + lowered; lateral: + towards the patient's left)."""

    axis: Literal["flexion", "lateral"] = "flexion"
    angle_deg: Degrees
    gauge: GaugeConfig

    @model_validator(mode="after")
    def _side(self):
        if self.axis == "flexion" and self.angle_deg <= 0:
            raise ValueError(f"angle_deg {self.angle_deg:g}°: a flexion obstacle stands where the section is "
                             "lowered, at an angle above 0°")
        if self.angle_deg == 0:
            raise ValueError("angle_deg 0°: the section stands there at neutral; give the side's angle "
                             "(+ left, - right)")
        return self

    def rated_travel_deg(self, identity: "FlexionIdentity") -> float:
        """The table's rated travel on this obstacle's axis, as its controller states it."""
        return identity.rated_depth_deg if self.axis == "flexion" else identity.rated_lateral_deg

    def beyond_travel(self, identity: "FlexionIdentity") -> str | None:
        """Why the section can never reach this obstacle (None: it can), from the rated
        travel the controller reports — what a rig file alone does not know."""
        rated = self.rated_travel_deg(identity)
        if abs(self.angle_deg) <= rated:
            return None
        return (f"obstacle.angle_deg: {self.angle_deg:g}° is beyond the table's rated {self.axis} travel "
                f"({rated:g}°, its controller says): the section never meets it; set the bench's obstacle angle")


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


@dataclass(frozen=True)
class Sections:
    """The rig-file sections of a bench's other reference instruments: those it must have
    and those it may have."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.required + self.optional


#: by controller protocol (drivers/kinds.py): FDC-1 moves a section by angle, measured by
#: the inclinometer, and may be stopped by the obstacle; a protocol not named has neither
SECTIONS: dict[str, Sections] = {"FDC-1": Sections(required=("inclinometer",), optional=("obstacle",))}
#: what each section is, for the line that says it is missing or out of place
SECTION_NOUNS = {"inclinometer": "reference inclinometer",
                 "obstacle": "obstacle slide with its load cell"}


def sections_for(table_kind: str) -> Sections:
    """The other instruments a bench of `table_kind` must or may carry."""
    return SECTIONS.get(kinds.controller_for_table(table_kind).protocol, Sections())


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
    #: a flexion-distraction bench's angle reference (required there, refused elsewhere)
    inclinometer: InclinometerConfig | None = None
    #: a flexion-distraction bench's obstacle slide (none: the obstruction test is an operator step)
    obstacle: ObstacleConfig | None = None
    source: Path | None = Field(None, exclude=True)

    @model_serializer(mode="wrap")
    def _without_absent_instruments(self, handler):
        """A bench without an inclinometer or obstacle dumps as it did before they existed
        (the rig lands in every run record, whose bytes must not change)."""
        data = handler(self)
        for key in SECTION_NOUNS:
            if key in data and data[key] is None:
                del data[key]
        return data

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
            if self.inclinometer is not None and not self.inclinometer.resource:
                raise ValueError("inclinometer: needs resource (VISA resource string)")
            if self.obstacle is not None and not self.obstacle.gauge.resource:
                raise ValueError("obstacle.gauge: needs resource (VISA resource string)")
        if self.safety_limit_n <= 0:
            raise ValueError("safety_limit_n must be above 0 N")
        self._instruments_of_the_table()
        return self

    def _instruments_of_the_table(self) -> None:
        """The sections the table kind needs are there, those it cannot use are not, and the
        obstacle stands where the inclinometer can read the section meeting it."""
        kind, sections = self.table.kind, sections_for(self.table.kind)
        present = {"inclinometer": self.inclinometer, "obstacle": self.obstacle}
        for key in sections.required:
            if present[key] is None:
                raise ValueError(f"{key}: a {kind} table's bench needs its {SECTION_NOUNS[key]}; add an {key}: "
                                 "section (see rigs/bench-flexion-example.yaml)")
        for key, section in present.items():
            if section is not None and key not in sections.allowed:
                raise ValueError(f"{key}: a {kind} table has no use for a {SECTION_NOUNS[key]}; remove the {key}: "
                                 "section (or check table.kind)")
        if self.obstacle is not None and self.inclinometer is not None and \
                abs(self.obstacle.angle_deg) >= self.inclinometer.range_deg:
            raise ValueError(f"obstacle.angle_deg: {self.obstacle.angle_deg:g}° is outside the inclinometer's range "
                             f"(±{self.inclinometer.range_deg:g}°): the section meeting it could not be measured; "
                             "check the obstacle angle")

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
        if self.obstacle is not None and self.obstacle.axis != "flexion":
            raise ValueError("obstacle.axis: the emulated table's obstacle is on the flexion axis "
                             "(rig emulate --obstacle-angle); use axis: flexion")

    @property
    def is_emulated(self) -> bool:
        return self.emulated is not None


def _loc(loc: tuple) -> str:
    """The dotted key of an error ("" for the whole file: those lines begin with their key)."""
    return ".".join(str(p) for p in loc if not str(p).startswith("function-"))


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
        key = _loc(first["loc"])
        raise ConfigError(f"{source}: {key + ': ' if key else ''}{_explain(first)}{more}") from None
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
