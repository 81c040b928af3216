"""Opening a rig: rig file or labgrid target -> resources -> connected drivers.

Every way of describing a rig ends in one `RigResources` (where each device is, typed),
and `connect` is the one path that opens devices from it: the controller of the table
kind's protocol and its safety link, the stimulus module, the gauge of its dialect (all
looked up in drivers/kinds.py), a flexion-distraction bench's inclinometer and obstacle
gauge (also by dialect), and an emulated table's patient simulator. An emulated
rig starts `rig emulate` as a child process first and takes the devices' addresses from
the `Endpoints` it prints; a real bench's are in its rig file; a labgrid target's come
from its drivers (rigs/lab_env.py). Closing the `Rig` (on any path) stops the emulator
it started.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from drivers import kinds
from drivers.errors import ConfigError, DeviceUnreachable, RigError
from drivers.gauge import ForceGauge, open_gauge
from drivers.inclinometer import Inclinometer, open_inclinometer
from drivers.links import ModbusLink, VisaInstrument
from drivers.modbus_controller import ModbusController
from drivers.patient_simulator import PatientSimulator
from drivers.stimulus import StimulusModule
from rigs.config import RigConfig
from rigs.endpoints import Endpoints

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EMULATOR_START_TIMEOUT_S = 20.0


@dataclass
class EmulatorProcess:
    """A `rig emulate` child; `endpoints` is the line it printed, read back."""

    process: subprocess.Popen
    endpoints: Endpoints
    events_path: str | None = None
    stats_path: str | None = None

    @classmethod
    def start(cls, kind: str, seed: int, time_scale: float, faults: list[str] | None = None,
              events_path: str | None = None, extra: list[str] | None = None,
              timeout_s: float = EMULATOR_START_TIMEOUT_S, stats_path: str | None = None,
              wear: float = 0.0) -> "EmulatorProcess":
        cmd = [sys.executable, "-m", "rigcli", "emulate", "--kind", kind, "--seed", str(seed),
               "--time-scale", str(time_scale)]
        for fault in faults or []:
            cmd += ["--fault", fault]
        if wear:
            cmd += ["--wear", repr(float(wear))]
        if events_path:
            cmd += ["--events", events_path]
        if stats_path:
            cmd += ["--stats", stats_path]
        cmd += extra or []
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True, env=env, cwd=str(PROJECT_ROOT))
        line = read_line(proc, timeout_s)
        if not line:
            proc.kill()
            err = proc.stderr.read().strip().splitlines() if proc.stderr else []
            last = err[-1] if err else "no output"
            raise RigError(f"emulator did not start within {timeout_s:.0f} s: {last}")
        try:
            endpoints = Endpoints.from_line(line)
        except (ValueError, KeyError, TypeError):
            proc.kill()
            raise RigError(f"emulator printed {line.strip()!r} instead of its endpoints") from None
        return cls(proc, endpoints, events_path, stats_path)

    def stats(self) -> dict | None:
        """What the stopped emulator wrote about itself (reply latencies, CPU), if asked to."""
        try:
            with open(self.stats_path, encoding="utf-8") as f:  # type: ignore[arg-type]
                return json.load(f)
        except (TypeError, OSError, ValueError):
            return None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


def read_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """The child's next stdout line within `timeout_s` ("" if none came, or it ended silent)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return proc.stdout.readline()
            if sel.select(timeout=0.1):
                return proc.stdout.readline()
        return ""
    finally:
        sel.close()


@dataclass(frozen=True)
class RigResources:
    """Where each device of one rig is and how it is spoken to, whoever described it.

    `safety` and `heartbeat`: a Modbus TCP controller's safety link and heartbeat link
    when they take a path of their own (None: the controller's address); an RTU line has
    room for one master, so it has neither. `inclinometer` and `obstacle_gauge`: a
    flexion-distraction bench's angle reference and the obstacle's load cell (None: the
    rig has no such section).
    """

    controller: ModbusLink
    stimulus: ModbusLink
    gauge: VisaInstrument
    safety: ModbusLink | None = None
    heartbeat: ModbusLink | None = None
    patient_simulator: ModbusLink | None = None
    inclinometer: VisaInstrument | None = None
    obstacle_gauge: VisaInstrument | None = None

    @classmethod
    def of(cls, config: RigConfig, endpoints: Endpoints | None = None) -> "RigResources":
        """The rig file's devices; a started emulator's addresses from its `endpoints`."""
        c, s, g = config.controller, config.stimulus, config.gauge
        tilt, obstacle = config.inclinometer, config.obstacle
        if endpoints is not None and not endpoints.attached:
            controller = endpoints.controller.link(c.unit_id, c.timeout_s)
            stimulus = endpoints.stimulus.link(s.unit_id, s.timeout_s)
            resource = endpoints.gauge(g.dialect).resource
            sim = endpoints.patient_simulator.link() if endpoints.patient_simulator else None
            tilt_at = _served_inclinometer(endpoints) if tilt is not None else None
            obstacle_at = _served_obstacle_gauge(endpoints, obstacle.gauge.dialect) if obstacle is not None else None
        else:
            if c.transport == "tcp":
                controller = ModbusLink.tcp(c.host, c.port, c.unit_id, c.timeout_s)
            else:
                controller = ModbusLink.rtu(c.serial_port, c.unit_id, c.timeout_s, c.baudrate, c.parity)
            stimulus = ModbusLink.tcp(s.host, s.port, s.unit_id, s.timeout_s)
            resource = g.resource
            sim = None
            if config.is_emulated and config.emulated.patient_simulator:
                host, port = config.emulated.patient_simulator.rsplit(":", 1)
                sim = ModbusLink.tcp(host, int(port))
            tilt_at = tilt.resource if tilt is not None else None
            obstacle_at = obstacle.gauge.resource if obstacle is not None else None
        safety, heartbeat = (controller.at(*c.link(which)) if c.link(which) else None
                             for which in ("safety", "heartbeat"))
        return cls(controller, stimulus, VisaInstrument(resource, g.dialect, g.timeout_s), safety, heartbeat, sim,
                   VisaInstrument(tilt_at, tilt.dialect, tilt.timeout_s) if tilt is not None else None,
                   VisaInstrument(obstacle_at, obstacle.gauge.dialect, obstacle.gauge.timeout_s)
                   if obstacle is not None else None)


def _served_inclinometer(endpoints: Endpoints) -> str:
    """The started emulator's inclinometer resource (a rig that needs one, from an emulator
    that serves none, is a mismatch of rig file and emulator kind)."""
    if endpoints.inclinometer is None:
        raise RigError(f"the emulator ({endpoints.kind or 'unknown kind'}) serves no inclinometer; "
                       "check the rig file's table.kind")
    return endpoints.inclinometer.resource


def _served_obstacle_gauge(endpoints: Endpoints, dialect: str) -> str:
    served = endpoints.obstacle_gauges or {}
    if dialect not in served:
        raise RigError(f"the emulator ({endpoints.kind or 'unknown kind'}) serves no {dialect} obstacle gauge "
                       f"(it serves {', '.join(served) or 'none'}); check obstacle.gauge.dialect")
    return served[dialect].resource


@dataclass
class Rig:
    config: RigConfig
    #: the table kind's protocol driver (drivers/kinds.py): TractionController, FlexionController
    controller: ModbusController
    stimulus: StimulusModule
    gauge: ForceGauge
    emulator: EmulatorProcess | None = None
    #: where the emulated table's devices are (None: a real bench)
    emulator_endpoints: Endpoints | None = None
    #: a second link to the controller used only to make the table safe, so a signal
    #: arriving mid-transaction on the main link cannot corrupt the release commands
    #: (Modbus TCP only: an RTU line has room for one master; see make_safe)
    safety: ModbusController | None = None
    #: emulated rigs only: pulls on the harness from outside (provokes over-force)
    patient_simulator: PatientSimulator | None = None
    #: called last by close(): a labgrid target deactivates its drivers there
    on_close: Callable[[], None] | None = None
    #: a flexion-distraction bench's angle reference (rig file `inclinometer:`)
    inclinometer: Inclinometer | None = None
    #: the obstacle's load cell (rig file `obstacle.gauge`; None: the bench has no slide)
    obstacle_gauge: ForceGauge | None = None

    @property
    def time_scale(self) -> float:
        return self.config.time_scale

    @property
    def endpoints(self) -> dict:
        """`emulator_endpoints` as the run record keeps them (run-start's `emulator`); {} for a bench."""
        return self.emulator_endpoints.to_json() if self.emulator_endpoints is not None else {}

    def make_safe(self) -> list[str]:
        """Emergency release + drive off, on the safety link when there is one.

        A serial (RTU) controller has no second link: a signal can arrive while the main
        link waits for a reply, and that late reply can spoil the first attempt. Both
        commands are idempotent, so a failed attempt is repeated once on the main link
        (pymodbus discards stale bytes before each request)."""
        return self.release_attempts()[-1]

    def release_attempts(self) -> list[list[str]]:
        """What failed in each attempt of make_safe()'s commands: the safety link (the main
        link when there is none), then, when that failed, the main link once more. The
        release ladder (rigs/safe_state.py) keeps every failure: a failed safety link is a
        problem even when the retry took the commands."""
        attempts = [(self.safety or self.controller).make_safe()]
        if attempts[0]:
            attempts.append(self.controller.make_safe())
        return attempts

    def close(self) -> None:
        for part in (self.obstacle_gauge, self.inclinometer, self.gauge, self.stimulus, self.patient_simulator,
                     self.safety, self.controller):
            if part is None:
                continue
            try:
                part.close()
            except Exception:  # noqa: BLE001 — closing must reach the emulator stop
                pass
        if self.emulator is not None:
            self.emulator.stop()
        if self.on_close is not None:
            self.on_close()

    def __enter__(self) -> "Rig":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: the links to the controller, named (after the protocol's own name for its controller,
#: e.g. "traction controller (test link)") so a failure says which one it was
TEST_LINK = "test link"
SAFETY_LINK = "safety link"


def emulator_options(config: RigConfig) -> list[str]:
    """The `rig emulate` options a rig file asks of the emulator started for it: the serial
    lines it is wired by, and where its obstacle stands."""
    options = []
    if config.emulated.serial_lines:
        options += ["--serial-lines", "--rtu-parity", config.controller.parity]
    if config.obstacle is not None:
        options += ["--obstacle-angle", repr(config.obstacle.angle_deg)]
    return options


def open_rig(config: RigConfig, *, events_path: str | None = None, faults: list[str] | None = None,
             seed: int | None = None, stats_path: str | None = None, wear: float = 0.0) -> Rig:
    """Connect every device of the rig (starting its emulator first if it has one);
    `stats_path`: where a started emulator writes its reply latencies and CPU use."""
    emulator = None
    endpoints = Endpoints.attached_to(config) if config.is_emulated and config.emulated.attach else None
    if config.is_emulated and not config.emulated.attach:
        emulator = EmulatorProcess.start(
            config.table.kind,
            config.emulated.seed if seed is None else seed,
            config.time_scale,
            list(config.emulated.faults) + list(faults or []),
            events_path,
            extra=emulator_options(config),
            stats_path=stats_path,
            wear=wear,
        )
        endpoints = emulator.endpoints
    try:
        return connect(config, RigResources.of(config, endpoints), emulator=emulator, endpoints=endpoints)
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise


def connect(config: RigConfig, resources: RigResources, *, emulator: EmulatorProcess | None = None,
            endpoints: Endpoints | None = None, on_close: Callable[[], None] | None = None) -> Rig:
    """Open every device at `resources` with the drivers the table kind registered; on
    failure close what was opened (the caller stops its emulator).

    A bench with an obstacle: the stimulus module is opened with its slide (coil 4), and
    the obstacle's angle is checked against the rated travel the controller states — the
    one figure a rig file alone cannot know."""
    kind = kinds.controller_for_table(config.table.kind)
    name = kind.driver.default_name
    ctrl = kind.driver.on(resources.controller, name=f"{name} ({TEST_LINK})", safety_limit_n=config.safety_limit_n)
    stim = kinds.stimulus(kind.stimulus).on(resources.stimulus, obstacle_slide=config.obstacle is not None)
    gauge = safety = patient = tilt = obstacle = None
    try:
        ctrl.connect()
        identity = None
        if resources.controller.transport == "tcp":
            safety = kind.driver.on(resources.safety or resources.controller, name=f"{name} ({SAFETY_LINK})").connect()
            identity = safety.identity()  # a safety link that does not answer is found now, not when it is needed
            ctrl.heartbeat_link = resources.heartbeat  # the heartbeat process's own link, if routed
        if config.obstacle is not None:
            problem = config.obstacle.beyond_travel(identity or ctrl.identity())
            if problem:
                raise ConfigError(f"{config.source or config.name}: {problem}")
        stim.connect()
        g = resources.gauge
        gauge = open_gauge(g.resource, g.dialect, timeout_ms=int(g.timeout_s * 1000), time_scale=config.time_scale)
        if resources.inclinometer is not None:
            i = resources.inclinometer
            tilt = open_inclinometer(i.resource, i.dialect, timeout_ms=int(i.timeout_s * 1000),
                                     time_scale=config.time_scale)
        if resources.obstacle_gauge is not None:
            o = resources.obstacle_gauge
            obstacle = open_gauge(o.resource, o.dialect, timeout_ms=int(o.timeout_s * 1000),
                                  time_scale=config.time_scale)
        if resources.patient_simulator is not None:
            sim = resources.patient_simulator
            patient = PatientSimulator(sim.host, int(sim.port)).connect()
    except Exception:
        for part in (obstacle, tilt, gauge, patient, stim, safety, ctrl):
            if part is not None:
                try:
                    part.close()
                except Exception:  # noqa: BLE001
                    pass
        raise
    return Rig(config, ctrl, stim, gauge, emulator, endpoints, safety, patient, on_close, tilt, obstacle)


__all__ = ["Rig", "RigResources", "connect", "open_rig", "EmulatorProcess", "DeviceUnreachable", "TEST_LINK",
           "SAFETY_LINK", "emulator_options"]
