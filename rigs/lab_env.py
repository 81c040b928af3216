"""A rig described by a labgrid environment file instead of a rig file.

One rig model, two ways to describe it: a labgrid target's resources (local, or the
ones of a place acquired through labgrid's coordinator) are turned into the same
`RigConfig` a rig file gives, with the same validation and one-line errors, and the
rig is opened through the one connect path (`rigs.rig.connect`) at the addresses the
labgrid drivers of `drivers.labgrid_drivers` resolve.

A shared bench is locked the labgrid way: the coordinator refuses the resources of a
place that another user holds, and that refusal reaches the test engineer as one line
naming the holder and what to do, before anything on the bench is touched.
"""

from __future__ import annotations

import os
from importlib import import_module
from dataclasses import dataclass
from pathlib import Path

from drivers.errors import ConfigError, RigError
from rigs.config import RigConfig, rig_from_dict, sections_for
from rigs.endpoints import Endpoints
from rigs.rig import Rig, RigResources, connect


def _force_gauge(at: str) -> dict[str, str]:
    """A force gauge's parameters and the keys they fill under `at` (gauge:, obstacle.gauge:)."""
    return {"resource": f"{at}.resource", "dialect": f"{at}.dialect", "model": f"{at}.model",
            "serial": f"{at}.serial", "capacity_n": f"{at}.capacity_n", "resolution_n": f"{at}.resolution_n",
            "timeout_s": f"{at}.timeout_s", "calibration_certificate": f"{at}.calibration.certificate",
            "calibration_date": f"{at}.calibration.date", "calibration_due": f"{at}.calibration.due",
            "calibration_uncertainty_n": f"{at}.calibration.expanded_uncertainty_n",
            "calibration_coverage_factor": f"{at}.calibration.coverage_factor"}


#: resource class -> {resource parameter: the rig-file key it fills}. One table for both
#: directions: a target's resources become a rig, and a rig becomes an exporter's resources.
FIELDS: dict[str, dict[str, str]] = {
    "TractionTable": {"kind": "table.kind", "model": "table.model", "serial": "table.serial",
                      "specification": "table.specification", "safety_limit_n": "safety_limit_n",
                      "description": "description", "time_scale": "time_scale"},
    "TractionControllerTCP": {"host": "controller.host", "port": "controller.port",
                              "unit_id": "controller.unit_id", "timeout_s": "controller.timeout_s"},
    "TractionControllerRTU": {"port": "controller.serial_port", "baudrate": "controller.baudrate",
                              "parity": "controller.parity", "unit_id": "controller.unit_id",
                              "timeout_s": "controller.timeout_s"},
    "StimulusModuleTCP": {"host": "stimulus.host", "port": "stimulus.port", "unit_id": "stimulus.unit_id",
                          "timeout_s": "stimulus.timeout_s"},
    "ForceGaugeVISA": _force_gauge("gauge"),
    "InclinometerVISA": {"resource": "inclinometer.resource", "dialect": "inclinometer.dialect",
                         "model": "inclinometer.model", "serial": "inclinometer.serial",
                         "range_deg": "inclinometer.range_deg", "resolution_deg": "inclinometer.resolution_deg",
                         "timeout_s": "inclinometer.timeout_s",
                         "calibration_certificate": "inclinometer.calibration.certificate",
                         "calibration_date": "inclinometer.calibration.date",
                         "calibration_due": "inclinometer.calibration.due",
                         "calibration_uncertainty_deg": "inclinometer.calibration.expanded_uncertainty_deg",
                         "calibration_coverage_factor": "inclinometer.calibration.coverage_factor"},
    "ObstacleGaugeVISA": {"axis": "obstacle.axis", "angle_deg": "obstacle.angle_deg",
                          **_force_gauge("obstacle.gauge")},
}
#: the controller's resource class for each transport (one table, both directions)
CONTROLLER_CLASSES = {"tcp": "TractionControllerTCP", "rtu": "TractionControllerRTU"}
#: the resource class of each rig-file section a table kind requires or allows (rigs.config.sections_for)
SECTION_CLASSES = {"inclinometer": "InclinometerVISA", "obstacle": "ObstacleGaugeVISA"}
DEFAULT_COORDINATOR = "127.0.0.1:20408"


class PlaceUnavailable(RigError):
    """The labgrid place is not ours to drive (held by someone else, not acquired, unknown)."""


@dataclass
class LabTarget:
    """One target of a labgrid environment, with the rig it describes."""

    env_file: Path
    role: str
    target: object  # labgrid.Target
    config: RigConfig
    place: dict | None = None  # name, acquired by, coordinator — for the run record

    def open(self) -> Rig:
        return open_rig_on_target(self.target, self.config)


def load_environment(path: str | Path, coordinator: str | None = None):
    """labgrid's Environment for `path`, or one line naming the file and the fix."""
    from labgrid import Environment
    from labgrid.exceptions import NoConfigFoundError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such labgrid environment file; pass an existing file to --lg-env")
    try:
        env = Environment(config_file=str(path))
    except NoConfigFoundError:
        raise ConfigError(f"{path}: cannot read the labgrid environment file") from None
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{path}: imports: module {exc.name!r} not found (use drivers.labgrid_drivers)") from None
    except Exception as exc:  # labgrid's InvalidConfigError and YAML errors carry the detail
        raise ConfigError(f"{path}: not a valid labgrid environment ({_first_line(exc)})") from None
    if not env.config.get_targets():
        raise ConfigError(f"{path}: targets: no target defined (add e.g. targets: {{main: {{resources: ...}}}})")
    if coordinator:
        env.config.set_option("coordinator_address", coordinator)
    import_module("drivers.labgrid_drivers")  # the classes a target may name, even if imports: forgot them

    return env


def target_roles(env) -> list[str]:
    return list(env.config.get_targets())


def lab_target(env, role: str) -> LabTarget:
    """Create the target (reaching the coordinator for a RemotePlace) and its rig model."""
    from labgrid.exceptions import InvalidConfigError
    from labgrid.remote.client import Error as LabgridClientError

    path = Path(env.config_file)
    place_name = _remote_place_name(env, role)
    try:
        target = env.get_target(role)
    except LabgridClientError as exc:
        if "could not connect to coordinator" in str(exc).lower():
            raise _unreachable(env, path, exc) from None
        raise _place_error(path, place_name, exc) from None
    except (ConnectionError, OSError) as exc:
        raise _unreachable(env, path, exc) from None
    except InvalidConfigError as exc:
        raise ConfigError(f"{path}: target {role}: {_first_line(exc)}") from None
    except Exception as exc:  # attrs/TypeError from a resource with a bad or missing parameter
        raise ConfigError(f"{path}: target {role}: {_first_line(exc)}") from None
    if target is None:
        raise ConfigError(f"{path}: no target {role!r}; targets are {', '.join(target_roles(env))}")
    name = place_name or _option(env, role, "rig_name") or role
    config = rig_config_from_target(target, path, role, name)
    place = None
    if place_name:
        place = {"name": place_name, "coordinator": _coordinator(env), "acquired_by": _place_holder(place_name)}
    return LabTarget(path, role, target, config, place)


def rig_config_from_target(target, source: Path, role: str, name: str) -> RigConfig:
    by_class: dict[str, object] = {}
    for resource in target.resources:
        by_class.setdefault(type(resource).__name__, resource)
    where = f"{source} (labgrid target {role})"

    def need(cls: str, *alternatives: str):
        for c in (cls, *alternatives):
            if c in by_class:
                return by_class[c]
        names = " or ".join((cls, *alternatives))
        have = ", ".join(sorted(by_class)) or "none"
        raise ConfigError(f"{where}: no {names} resource (resources found: {have}); add it to the "
                          "target, or to the exporter of its place")

    table = need("TractionTable")
    controller = need(*CONTROLLER_CLASSES.values())
    chosen = [table, controller, need("StimulusModuleTCP"), need("ForceGaugeVISA")]
    sections = sections_for(table.kind)  # a kind the registry does not know, TractionTable refused
    chosen += [need(SECTION_CLASSES[key]) for key in sections.required]
    # a section the kind does not allow is taken too, so the rig model refuses it in its one line
    chosen += [by_class[cls] for key, cls in SECTION_CLASSES.items()
               if key not in sections.required and cls in by_class]
    transport = next(t for t, cls in CONTROLLER_CLASSES.items() if cls == type(controller).__name__)
    data: dict = {"name": name, "controller": {"transport": transport}}
    for resource in chosen:
        params = {p: getattr(resource, p) for p in FIELDS[type(resource).__name__]}
        if "host" in params:
            params["host"], params["port"] = _host_port(resource)
        for param, key in FIELDS[type(resource).__name__].items():
            if params[param] is not None:
                _put(data, key, params[param])
    data["table"].setdefault("specification", table.kind)
    if table.emulated:
        data["emulated"] = {"seed": table.seed, "attach": True}
        sim = by_class.get("PatientSimulatorTCP")
        if sim is not None:
            host, port = _host_port(sim)
            data["emulated"]["patient_simulator"] = f"{host}:{port}"
    try:
        return rig_from_dict(data, source)
    except ConfigError as exc:
        text = str(exc).removeprefix(f"{source}: ")
        for resource in chosen:  # name the resource parameter the user wrote, not the rig key
            cls = type(resource).__name__
            for param, key in FIELDS[cls].items():
                if text.startswith(key + ":"):
                    text = f"{cls}.{param}:" + text[len(key) + 1:]
        for key, cls in SECTION_CLASSES.items():  # a whole section is its resource
            if text.startswith(key + ":"):
                text = f"{cls}:" + text[len(key) + 1:].replace(f"the {key}: section", f"the {cls} resource")
        raise ConfigError(f"{where}: {text}") from None


def exporter_config(config: RigConfig, group: str) -> dict:
    """The labgrid exporter file that publishes `config`'s bench as resource group `group`.

    The inverse of `rig_config_from_target`: exporting this and acquiring the place gives
    back the same rig. An emulated rig must be attached (its addresses known).
    """
    if config.is_emulated and not config.emulated.attach:
        raise ConfigError(f"{config.source or config.name}: an emulated rig is exported once its emulator runs "
                          "(rig lab export starts it)")
    flat = config.model_dump(mode="json")
    resources: dict[str, dict] = {}
    sections = [cls for key, cls in SECTION_CLASSES.items() if key in flat]  # a section absent is not dumped
    for cls in ("TractionTable", CONTROLLER_CLASSES[config.controller.transport], "StimulusModuleTCP", "ForceGaugeVISA",
                *sections):
        values = {param: _get(flat, key) for param, key in FIELDS[cls].items()}
        resources[cls] = {param: value for param, value in values.items() if value not in (None, "")}
    if config.is_emulated:
        resources["TractionTable"].update(emulated=True, seed=config.emulated.seed)
        if config.emulated.patient_simulator:
            host, port = config.emulated.patient_simulator.rsplit(":", 1)
            resources["PatientSimulatorTCP"] = {"host": host, "port": int(port)}
    return {group: resources}


def open_rig_on_target(target, config: RigConfig) -> Rig:
    """The rig of a labgrid target, opened through the one connect path at the addresses
    its drivers resolve; closing it deactivates the drivers."""
    try:
        resources = target_resources(target, config)
        return connect(config, resources, endpoints=Endpoints.attached_to(config) if config.is_emulated else None,
                       on_close=target.deactivate_all_drivers)
    except Exception:
        target.deactivate_all_drivers()
        raise


def target_resources(target, config: RigConfig) -> RigResources:
    """Activate the target's drivers (creating any the environment did not list) and take
    the address each resolves: the same `RigResources` its rig file would give."""
    from labgrid.exceptions import NoDriverFoundError

    from drivers.labgrid_drivers import (
        ForceGaugeDriver,
        InclinometerDriver,
        ObstacleGaugeDriver,
        PatientSimulatorDriver,
        StimulusModuleDriver,
        TractionControllerDriver,
    )

    def driver(cls, optional: bool = False):
        try:
            return target.get_driver(cls)
        except NoDriverFoundError:
            pass
        try:
            cls(target, None)
        except Exception:  # noqa: BLE001 — no resource to bind (optional side channels)
            if optional:
                return None
            raise
        return target.get_driver(cls)

    sim = driver(PatientSimulatorDriver, optional=True) if config.is_emulated else None
    tilt = driver(InclinometerDriver) if config.inclinometer is not None else None
    obstacle = driver(ObstacleGaugeDriver) if config.obstacle is not None else None
    return RigResources(driver(TractionControllerDriver).link(), driver(StimulusModuleDriver).link(),
                        driver(ForceGaugeDriver).resource(), patient_simulator=sim.link() if sim is not None else None,
                        inclinometer=tilt.resource() if tilt is not None else None,
                        obstacle_gauge=obstacle.resource() if obstacle is not None else None)


# ---------------------------------------------------------------- helpers
def _put(data: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def _get(data: dict, dotted: str):
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _host_port(resource) -> tuple[str, int]:
    host = resource.host
    if ":" in host and not host.startswith("["):
        h, p = host.rsplit(":", 1)
        if p.isdigit():
            return h, int(p)
    return host, int(resource.port)


def _option(env, role: str, name: str):
    try:
        return env.config.get_target_option(role, name)
    except KeyError:
        return None


def _remote_place_name(env, role: str) -> str | None:
    from labgrid.factory import target_factory

    resources, _ = target_factory.normalize_config(env.config.get_targets().get(role) or {})
    places = resources.get("RemotePlace", {})
    for name, args in places.items():
        if name is None and args and isinstance(args[0], dict):
            return args[0].get("name")
        return name
    return None


def _coordinator(env) -> str:
    default = os.environ.get("LG_COORDINATOR", DEFAULT_COORDINATOR)
    try:
        return env.config.get_option("coordinator_address", default)
    except KeyError:
        return default


def _session():
    from labgrid.resource.remote import RemotePlaceManager

    return RemotePlaceManager.get().session


def _place_holder(place_name: str) -> str | None:
    try:
        return _session().get_place(place_name).acquired
    except Exception:  # noqa: BLE001 — informational only
        return None


def _unreachable(env, path: Path, exc: Exception) -> PlaceUnavailable:
    return PlaceUnavailable(f"{path}: labgrid coordinator {_coordinator(env)} unreachable ({_first_line(exc)}); "
                            "start it or pass --lg-coordinator HOST:PORT")


def _place_error(path: Path, place: str | None, exc: Exception) -> PlaceUnavailable:
    """labgrid's refusal, restated with who holds the place and the command that fixes it."""
    text = _first_line(exc)
    if place is None:
        return PlaceUnavailable(f"{path}: labgrid refused the target: {text}")
    holder = _place_holder(place)
    me = _me()
    if holder and holder != me:
        return PlaceUnavailable(
            f"labgrid place {place} is held by {holder} (you are {me}): wait until they run "
            f"`labgrid-client -p {place} release`, or ask them to `labgrid-client -p {place} allow {me}`"
        )
    if "not acquired" in text and not holder:
        return PlaceUnavailable(f"labgrid place {place} is not acquired: run `labgrid-client -p {place} acquire` first")
    return PlaceUnavailable(f"labgrid place {place}: {text}")


def _me() -> str:
    from getpass import getuser
    from socket import gethostname

    return f"{os.environ.get('LG_HOSTNAME', gethostname())}/{os.environ.get('LG_USERNAME', getuser())}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def attached_rig(config: RigConfig, endpoints: Endpoints) -> RigConfig:
    """`config` with the addresses of its running emulator (what `rig emulate` printed)."""
    if endpoints.controller.transport != "tcp":
        raise ConfigError(f"{config.source or config.name}: only a Modbus TCP emulated table can be exported "
                          "(serial lines are local to this machine)")
    data = config.model_dump(mode="json", exclude={"source"})
    data["controller"].update(host=endpoints.controller.host, port=endpoints.controller.port)
    data["stimulus"].update(host=endpoints.stimulus.host, port=endpoints.stimulus.port)
    data["gauge"]["resource"] = endpoints.gauge(config.gauge.dialect).resource
    resources = RigResources.of(config, endpoints)  # the instruments a started emulator serves, checked there
    if config.inclinometer is not None:
        data["inclinometer"]["resource"] = resources.inclinometer.resource
    if config.obstacle is not None:
        data["obstacle"]["gauge"]["resource"] = resources.obstacle_gauge.resource
    data["table"]["serial"] = endpoints.serial or config.table.serial
    sim = endpoints.patient_simulator
    data["emulated"] = {"seed": config.emulated.seed if endpoints.seed is None else endpoints.seed, "attach": True,
                        "patient_simulator": f"{sim.host}:{sim.port}" if sim else None}
    return rig_from_dict(data, config.source or "<rig>")
