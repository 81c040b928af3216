"""Opening a rig: rig file -> (emulator process) -> connected drivers.

An emulated rig starts `rig emulate` as a child process and reads the endpoints it
prints; a real bench uses the addresses in its rig file. Either way the caller gets
one `Rig` with a controller, a stimulus module and a gauge, and closing it (on any
path) stops the emulator it started.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from drivers.controller import TractionController
from drivers.errors import DeviceUnreachable, RigError
from drivers.gauge import ForceGauge, open_gauge
from drivers.stimulus import StimulusModule
from rigs.config import RigConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EMULATOR_START_TIMEOUT_S = 20.0


@dataclass
class EmulatorProcess:
    """A `rig emulate` child; `endpoints` is the JSON line it printed."""

    process: subprocess.Popen
    endpoints: dict
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
        line = _read_line(proc, timeout_s)
        if not line:
            proc.kill()
            err = proc.stderr.read().strip().splitlines() if proc.stderr else []
            last = err[-1] if err else "no output"
            raise RigError(f"emulator did not start within {timeout_s:.0f} s: {last}")
        try:
            endpoints = json.loads(line)
        except json.JSONDecodeError:
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


def _read_line(proc: subprocess.Popen, timeout_s: float) -> str:
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


@dataclass
class Rig:
    config: RigConfig
    controller: TractionController
    stimulus: StimulusModule
    gauge: ForceGauge
    emulator: EmulatorProcess | None = None
    endpoints: dict = field(default_factory=dict)
    #: a second link to the controller used only to make the table safe, so a signal
    #: arriving mid-transaction on the main link cannot corrupt the release commands
    #: (Modbus TCP only: an RTU line has room for one master; see make_safe)
    safety: TractionController | None = None
    #: emulated rigs only: pulls on the harness from outside (provokes over-force)
    patient_simulator: object | None = None
    #: called last by close(): a labgrid target deactivates its drivers there
    on_close: Callable[[], None] | None = None

    @property
    def time_scale(self) -> float:
        return self.config.time_scale

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
        for part in (self.gauge, self.stimulus, self.patient_simulator, self.safety, self.controller):
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


#: the link the suites talk on, named so a failure says which of the controller's links it was
TEST_LINK = "traction controller (test link)"


def open_rig(config: RigConfig, *, events_path: str | None = None, faults: list[str] | None = None,
             seed: int | None = None, stats_path: str | None = None, wear: float = 0.0) -> Rig:
    """Connect every device of the rig (starting its emulator first if it has one);
    `stats_path`: where a started emulator writes its reply latencies and CPU use."""
    emulator = None
    c, s, g = config.controller, config.stimulus, config.gauge
    if config.emulated is not None and not config.emulated.attach:
        emulator = EmulatorProcess.start(
            config.table.kind,
            config.emulated.seed if seed is None else seed,
            config.time_scale,
            list(config.emulated.faults) + list(faults or []),
            events_path,
            extra=["--serial-lines", "--rtu-parity", c.parity] if config.emulated.serial_lines else None,
            stats_path=stats_path,
            wear=wear,
        )
        ep = emulator.endpoints
        ec = ep["controller"]
        if ec["transport"] == "rtu":  # the far end of the null-modem the emulator made
            ctrl = TractionController(transport="rtu", port=ec["port"], baudrate=ec["baudrate"], parity=ec["parity"],
                                      unit_id=c.unit_id, timeout_s=c.timeout_s, safety_limit_n=config.safety_limit_n,
                                      name=TEST_LINK)
        else:
            ctrl = TractionController(transport="tcp", host=ec["host"], port=ec["port"],
                                      unit_id=c.unit_id, timeout_s=c.timeout_s, safety_limit_n=config.safety_limit_n,
                                      name=TEST_LINK)
        stim = StimulusModule(ep["stimulus"]["host"], ep["stimulus"]["port"], s.unit_id, s.timeout_s)
        resource = ep["gauges"][g.dialect]["resource"]
        endpoints = ep
    else:
        if c.transport == "tcp":
            ctrl = TractionController(transport="tcp", host=c.host, port=c.port, unit_id=c.unit_id,
                                      timeout_s=c.timeout_s, safety_limit_n=config.safety_limit_n, name=TEST_LINK)
        else:
            ctrl = TractionController(transport="rtu", port=c.serial_port, unit_id=c.unit_id,
                                      timeout_s=c.timeout_s, safety_limit_n=config.safety_limit_n,
                                      baudrate=c.baudrate, parity=c.parity, name=TEST_LINK)
        stim = StimulusModule(s.host, s.port, s.unit_id, s.timeout_s)
        resource = g.resource
        endpoints = attached_endpoints(config) if config.is_emulated else {}
    gauge = safety = patient = None
    try:
        ctrl.connect()
        if ctrl.transport.value == "tcp":
            shost, sport = c.link("safety") or (ctrl._client.comm_params.host, ctrl._client.comm_params.port)
            safety = TractionController(transport="tcp", host=shost, port=sport, unit_id=ctrl.unit_id,
                                        timeout_s=ctrl.timeout_s, name="traction controller (safety link)").connect()
            safety.identity()  # a safety link that does not answer is found now, not when it is needed
            if c.link("heartbeat"):  # the heartbeat process's own link, routed as the rig file says
                ctrl.heartbeat_link = dict(zip(("host", "port"), c.link("heartbeat")))
        stim.connect()
        gauge = open_gauge(resource, g.dialect, timeout_ms=int(g.timeout_s * 1000), time_scale=config.time_scale)
        if "patient_simulator" in endpoints:
            from drivers.patient_simulator import PatientSimulator

            ps = endpoints["patient_simulator"]
            patient = PatientSimulator(ps["host"], ps["port"]).connect()
    except Exception:
        for part in (gauge, patient, stim, safety, ctrl):
            if part is not None:
                try:
                    part.close()
                except Exception:  # noqa: BLE001
                    pass
        if emulator is not None:
            emulator.stop()
        raise
    return Rig(config, ctrl, stim, gauge, emulator, endpoints, safety, patient)


def attached_endpoints(config: RigConfig) -> dict:
    """What a started emulator would have printed, for one that was already running."""
    c, s, g = config.controller, config.stimulus, config.gauge
    ep: dict = {"attached": True, "seed": config.emulated.seed, "time_scale": config.time_scale,
                "controller": {"transport": c.transport, "host": c.host, "port": c.port, "serial_port": c.serial_port},
                "stimulus": {"host": s.host, "port": s.port}, "gauges": {g.dialect: {"resource": g.resource}}}
    if config.emulated.patient_simulator:
        host, port = config.emulated.patient_simulator.rsplit(":", 1)
        ep["patient_simulator"] = {"host": host, "port": int(port)}
    return ep


__all__ = ["Rig", "open_rig", "EmulatorProcess", "DeviceUnreachable"]
