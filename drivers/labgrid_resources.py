"""labgrid resources: what a bench has, in the form labgrid can export and lock.

A resource only says where a device is; the drivers in `drivers.labgrid_drivers` talk
to it. Every parameter is a flat scalar because labgrid's exporter ships resource
parameters to the coordinator as a protobuf map of scalars — so the gauge's
calibration is spelled out field by field rather than nested as in a rig file.

Values are kept as written (numbers or strings such as "50 lbF", dates as text): the
rig model (`rigs.config.RigConfig`) validates them, so a bench described by a labgrid
environment gets exactly the checks and one-line errors of one described by a rig file.

Import this module (an environment file's `imports:` does it through
`drivers.labgrid_drivers`) by its module name only: labgrid refuses a class that is
registered twice.
"""

from __future__ import annotations

import attr
from labgrid.factory import target_factory
from labgrid.resource.common import Resource

from drivers import kinds

_str = attr.validators.instance_of(str)
_int = attr.validators.instance_of(int)
_opt_str = attr.validators.optional(_str)
_scalar = attr.validators.instance_of((int, float, str))
_opt_scalar = attr.validators.optional(_scalar)


def _registered(known):
    """A validator: the value is one of `known()` (a look-up in drivers/kinds.py, made when
    a resource is created, so a kind registered later is accepted too)."""

    def check(_instance, attribute, value):
        names = known()
        if value not in names:
            raise ValueError(f"'{attribute.name}' must be one of {', '.join(names)} (got {value!r})")

    return check


def _text(value):
    """YAML turns 2026-05-12 into a date; the coordinator can only carry text."""
    return value if value is None or isinstance(value, (int, float, str)) else str(value)


@attr.s(eq=False)
class ModbusTCPEndpoint(Resource):
    """A Modbus TCP device (not registered itself: the classes below say which device).

    Args:
        host (str): address of the device, optionally with ":port"
        port (int): TCP port when `host` has none (real devices: 502)
        unit_id (int): Modbus unit / device id
        timeout_s (float|str): per-transaction timeout
    """

    host = attr.ib(validator=_str)
    port = attr.ib(default=502, validator=_int)
    unit_id = attr.ib(default=1, validator=_int)
    timeout_s = attr.ib(default=1.0, validator=_scalar)


@target_factory.reg_resource
@attr.s(eq=False)
class TractionControllerTCP(ModbusTCPEndpoint):
    """A TCM-1 traction controller on Modbus TCP."""


@target_factory.reg_resource
@attr.s(eq=False)
class TractionControllerRTU(Resource):
    """A TCM-1 traction controller on Modbus RTU (contract: 19200 baud, 8E1).

    Args:
        port (str): serial device on the machine that runs the suites, e.g. /dev/ttyUSB1
    """

    port = attr.ib(validator=_str)
    baudrate = attr.ib(default=19200, validator=_int)
    parity = attr.ib(default="E", validator=attr.validators.in_(("E", "N", "O")))
    unit_id = attr.ib(default=1, validator=_int)
    timeout_s = attr.ib(default=1.0, validator=_scalar)


@target_factory.reg_resource
@attr.s(eq=False)
class StimulusModuleTCP(ModbusTCPEndpoint):
    """The SIO-1 relay module that presses the patient switch and e-stop and cuts mains."""


@attr.s(eq=False)
class VisaForceGauge(Resource):
    """A force gauge reached through VISA (not registered itself: the classes below say
    which role it has on the bench, so a target with both is never ambiguous).

    The model, serial and calibration belong to the instrument, so they travel with
    it: a gauge moved to another bench takes its certificate along.
    """

    resource = attr.ib(validator=_str)
    dialect = attr.ib(validator=_registered(lambda: kinds.dialects("force")))
    model = attr.ib(validator=_str)
    serial = attr.ib(converter=str)
    capacity_n = attr.ib(validator=_scalar)
    resolution_n = attr.ib(validator=_scalar)
    calibration_certificate = attr.ib(validator=_str)
    calibration_date = attr.ib(converter=_text, validator=_str)
    calibration_due = attr.ib(converter=_text, validator=_str)
    calibration_uncertainty_n = attr.ib(validator=_scalar)
    calibration_coverage_factor = attr.ib(default=2.0, validator=_scalar)
    timeout_s = attr.ib(default=2.0, validator=_scalar)


@target_factory.reg_resource
@attr.s(eq=False)
class ForceGaugeVISA(VisaForceGauge):
    """The reference force gauge in line with the harness (or a flexion-distraction
    table's ankle straps), reached through VISA."""


@target_factory.reg_resource
@attr.s(eq=False)
class ObstacleGaugeVISA(VisaForceGauge):
    """A flexion-distraction bench's obstacle: the padded load cell its stimulus module's
    slide (SIO-1 coil 4) puts in the section's path, and where the section meets it.

    Args:
        angle_deg (float|str): the angle at which the section meets the obstacle (signed as the axis)
        axis (str): flexion or lateral
    """

    angle_deg = attr.ib(kw_only=True, validator=_scalar)
    axis = attr.ib(default="flexion", kw_only=True, validator=attr.validators.in_(("flexion", "lateral")))


@target_factory.reg_resource
@attr.s(eq=False)
class InclinometerVISA(Resource):
    """A flexion-distraction bench's reference inclinometer on the moving section,
    reached through VISA; its calibration travels with it, as a gauge's does."""

    resource = attr.ib(validator=_str)
    dialect = attr.ib(validator=_registered(lambda: kinds.dialects("angle")))
    model = attr.ib(validator=_str)
    serial = attr.ib(converter=str)
    range_deg = attr.ib(validator=_scalar)
    resolution_deg = attr.ib(validator=_scalar)
    calibration_certificate = attr.ib(validator=_str)
    calibration_date = attr.ib(converter=_text, validator=_str)
    calibration_due = attr.ib(converter=_text, validator=_str)
    calibration_uncertainty_deg = attr.ib(validator=_scalar)
    calibration_coverage_factor = attr.ib(default=2.0, validator=_scalar)
    timeout_s = attr.ib(default=2.0, validator=_scalar)


@target_factory.reg_resource
@attr.s(eq=False)
class TractionTable(Resource):
    """The device under test on the bench, and the limits the rig keeps on it.

    Args:
        kind (str): a table kind registered in drivers/kinds.py (lumbar, cervical, flexion-distraction)
        specification (str): specification name or file; default: the kind's
        safety_limit_n (float|str): the framework never commands more (but for the interlock test)
        time_scale (float): 1.0 for a real table; an emulated table may run faster
        emulated (bool): an emulated table (its side channels may be exported too)
    """

    kind = attr.ib(validator=_registered(kinds.table_kinds))
    model = attr.ib(validator=_str)
    serial = attr.ib(converter=str)
    safety_limit_n = attr.ib(validator=_scalar)
    specification = attr.ib(default=None, validator=_opt_str)
    description = attr.ib(default="", validator=_str)
    time_scale = attr.ib(default=1.0, validator=attr.validators.instance_of((int, float)))
    emulated = attr.ib(default=False, validator=attr.validators.instance_of(bool))
    seed = attr.ib(default=0, validator=_int)


@target_factory.reg_resource
@attr.s(eq=False)
class PatientSimulatorTCP(Resource):
    """An emulated table's patient simulator (pulls on the harness to provoke over-force)."""

    host = attr.ib(validator=_str)
    port = attr.ib(default=502, validator=_int)


__all__ = [
    "TractionControllerTCP",
    "TractionControllerRTU",
    "StimulusModuleTCP",
    "ForceGaugeVISA",
    "ObstacleGaugeVISA",
    "InclinometerVISA",
    "TractionTable",
    "PatientSimulatorTCP",
]
