"""The emulated rig as its own process: `rig emulate`.

One asyncio loop serves the controller and stimulus module (pymodbus) and both gauge
dialects (raw sockets) for one table, so the test process cannot disturb its timing.
What a table kind serves is its `EmulatedKind` in `EMULATED_KINDS` (a traction table:
TCM-1 and the strap gauges; a flexion-distraction table: FDC-1, SIO-1 with the obstacle
slide, the distraction gauges, the tilt inclinometer and the obstacle's gauges), so a new
kind is one entry there, not a branch here.
On start it prints one JSON line with every endpoint; SIGTERM/SIGINT shut it down.
Optionally it appends ground-truth events (trigger and release instants in table time
and in this machine's monotonic clock) to a JSON-lines file, for benchmarks that judge
the rig's own latency measurements.

Serial transports: `controller_rtu` / `gauge_serial` serve the controller (Modbus RTU)
or the gcl gauge on a serial device the user wired (e.g. one end of a socat pair);
`serial_lines` makes the null-modem cables itself (pty pairs, rigs/emulator/nullmodem.py),
serves on one end and prints the other, so a client needs nothing but this process.
Over ptys the RTU parity defaults to N: a pty carries no parity bit, and some kernels
(this sandbox's among them) refuse PARENB on one. A real line uses the contract's 8E1.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from drivers.errors import ConfigError
from drivers.priority import raise_priority
from drivers.tcm1 import RTU_BAUDRATE, RTU_PARITY, VALID_STIMULUS_COILS, StimulusCoil
from rigs.emulator.gauge_server import SERIAL_BAUD, close_gauge_server, serve_gauge, serve_gauge_serial
from rigs.emulator import kernel
from rigs.emulator.faults import check_faults
from rigs.emulator.fd_table import FlexionDistractionTable
from rigs.emulator.gauges import GclGauge, ScpiGauge
from rigs.emulator.inclinometer import TiltInclinometer
from rigs.emulator.latency import REPLIES
from rigs.emulator.modbus_server import (
    FDC1_MAP,
    TCM1_MAP,
    RegisterMap,
    controller_devices,
    patient_simulator_devices,
    serve_rtu,
    serve_tcp,
    stimulus_devices,
)
from rigs.emulator.nullmodem import PtyLink
from rigs.emulator.obstacle import DEFAULT_OBSTACLE_ANGLE_DEG
from rigs.emulator.table import EmulatedTable
from rigs.endpoints import Endpoints, SerialEndpoint, SocketInstrument, TcpEndpoint

GAUGE_CAPACITY_N = {"lumbar": 1000.0, "cervical": 500.0, "flexion-distraction": 500.0}
#: the obstacle's load cell: the force the section presses on it stays well below this
OBSTACLE_GAUGE_CAPACITY_N = 500.0
#: ... and its own serial (the embedded rig file's obstacle gauge), not the distraction gauge's
OBSTACLE_GAUGE_IDENTITY = ("TractionRig", "LCI-3000", "EMU-G-0002", "1.0")
#: Table seconds between background model advances: what a request arriving just before
#: the next one makes the model catch up (100 compiled cycles, a few microseconds).
TICK_TABLE_S = 0.1
TICK_WALL_S = (0.002, 0.02)  # ... within these wall-second bounds


@dataclass
class EmulatorOptions:
    kind: str = "lumbar"
    seed: int = 0
    time_scale: float = 1.0
    faults: list[str] = field(default_factory=list)
    wear: float = 0.0  # release slowed by this fraction (release_tau_s × (1 + wear))
    host: str = "127.0.0.1"
    unit_id: int = 1
    controller_rtu: str | None = None  # serial device for the controller (RTU)
    gauge_serial: str | None = None  # serial device for the gcl gauge
    serial_lines: bool = False  # make pty null-modems for the controller and the gcl gauge
    rtu_parity: str | None = None  # None: the contract's E on a device, N over ptys
    events_path: str | None = None
    stats_path: str | None = None  # written on stopping: reply latencies, CPU per wall second
    obstacle_angle_deg: float | None = None  # flexion-distraction: the bench's obstacle (None: the default)

    def check(self) -> None:
        """Bad combinations, as one line naming the options."""
        if self.kind not in EMULATED_KINDS:
            raise ConfigError(f"--kind {self.kind}: unknown table kind; known: {', '.join(EMULATED_KINDS)}")
        EMULATED_KINDS[self.kind].check(self)
        if self.serial_lines and (self.controller_rtu or self.gauge_serial):
            raise ConfigError("--serial-lines makes its own lines: drop --controller-rtu / --gauge-serial")
        if self.rtu_parity is not None and self.rtu_parity not in ("E", "N", "O"):
            raise ConfigError(f"--rtu-parity {self.rtu_parity}: expected E, N or O")
        if self.rtu_parity is not None and not (self.serial_lines or self.controller_rtu):
            raise ConfigError("--rtu-parity only applies to --controller-rtu or --serial-lines")

    @property
    def parity(self) -> str:
        if self.rtu_parity is not None:
            return self.rtu_parity
        return "N" if self.serial_lines else RTU_PARITY


def _no_obstacle(options: EmulatorOptions) -> None:
    if options.obstacle_angle_deg is not None:
        raise ConfigError(f"--obstacle-angle: a {options.kind} table has no obstacle slide "
                          "(only --kind flexion-distraction)")


def _no_instruments(table, options: EmulatorOptions) -> dict:
    return {}


@dataclass(frozen=True)
class EmulatedKind:
    """What `rig emulate --kind K` builds and serves for one table kind."""

    build: Callable[[EmulatorOptions], object]  # the table, from the options
    registers: RegisterMap  # the controller protocol's addresses
    relays: frozenset[int]  # the SIO-1 coils the bench's module has
    #: the bench's other instruments: {"inclinometer": model, "obstacle_gauges": {dialect: model}}
    instruments: Callable[[object, EmulatorOptions], dict] = _no_instruments
    check: Callable[[EmulatorOptions], None] = _no_obstacle


def _traction(options: EmulatorOptions) -> EmulatedTable:
    return EmulatedTable(options.kind, options.seed, options.time_scale, options.faults, wear=options.wear)


def _flexion_distraction(options: EmulatorOptions) -> FlexionDistractionTable:
    angle = DEFAULT_OBSTACLE_ANGLE_DEG if options.obstacle_angle_deg is None else options.obstacle_angle_deg
    return FlexionDistractionTable(options.seed, options.time_scale, obstacle_angle_deg=angle, faults=options.faults,
                                   wear=options.wear)


def _check_flexion_distraction(options: EmulatorOptions) -> None:
    check_faults(options.kind, options.faults)
    angle = options.obstacle_angle_deg
    if angle is not None and not 0.0 < angle < 45.0:
        raise ConfigError(f"--obstacle-angle {angle:g}: expected an angle in degrees between 0 and 45 "
                          "(the flexion axis, + lowered)")


def _fd_instruments(table: FlexionDistractionTable, options: EmulatorOptions) -> dict:
    """The tilt inclinometer on the section, and the obstacle's load cell in both dialects."""
    cell = table.obstacle_cell
    return {
        "inclinometer": TiltInclinometer(table, seed=options.seed + 2),
        "obstacle_gauges": {"gcl": GclGauge(cell, capacity_n=OBSTACLE_GAUGE_CAPACITY_N, seed=options.seed + 3),
                            "scpi": ScpiGauge(cell, capacity_n=OBSTACLE_GAUGE_CAPACITY_N, seed=options.seed + 4,
                                              identity=OBSTACLE_GAUGE_IDENTITY)},
    }


#: table kind -> what the emulator serves for it
EMULATED_KINDS: dict[str, EmulatedKind] = {
    "lumbar": EmulatedKind(_traction, TCM1_MAP, VALID_STIMULUS_COILS),
    "cervical": EmulatedKind(_traction, TCM1_MAP, VALID_STIMULUS_COILS),
    "flexion-distraction": EmulatedKind(_flexion_distraction, FDC1_MAP,
                                        VALID_STIMULUS_COILS | {int(StimulusCoil.OBSTACLE)},
                                        _fd_instruments, _check_flexion_distraction),
}


def socket_resource(host: str, port: int) -> str:
    return f"TCPIP::{host}::{port}::SOCKET"


def serial_endpoint(transport: str, served_on: str, client: str | None, **settings) -> SerialEndpoint:
    """A serial endpoint: the end served on, and the end a client opens when the emulator
    made the null-modem (None on a device the user wired: the client opens the other end)."""
    resource = f"ASRL{client}::INSTR" if client is not None and transport == "serial" else None
    return SerialEndpoint(transport, emulator_port=served_on, port=client, resource=resource, **settings)


def check_serial_line(device: str, baudrate: int, parity: str) -> None:
    """Open the line as the RTU server will and read its settings back, so a line that
    cannot carry the parity fails now, in one line: pymodbus would only log the refusal
    and retry in the background, and a pty may also accept PARENB and silently drop it."""
    import termios

    import serial

    hint = ""
    if parity != "N" and "/pts/" in device:
        hint = "; a pseudo-terminal carries no parity bit and some kernels refuse PARENB: use parity N over a pty"
    try:
        line = serial.Serial(device, baudrate=baudrate, bytesize=8, parity=parity, stopbits=1)
        try:
            applied = bool(termios.tcgetattr(line.fd)[2] & termios.PARENB)
        finally:
            line.close()
    except Exception as exc:  # noqa: BLE001 — pyserial also raises termios.error
        raise ConfigError(f"{device}: cannot open the serial line at {baudrate} 8{parity}1 ({exc}){hint}") from None
    if applied != (parity != "N"):
        raise ConfigError(f"{device}: the line did not keep parity {parity} (it reads back "
                          f"{'with' if applied else 'without'} parity){hint}")


class EventLog:
    """Appends the table's ground-truth events as they happen (flushed per line)."""

    def __init__(self, table: EmulatedTable, path: str | None) -> None:
        self.table = table
        self.file = open(path, "a", encoding="utf-8") if path else None
        self.seen = 0

    def flush_new(self) -> None:
        events = self.table.controller.events
        if self.file is None:
            self.seen = len(events)
            return
        clock = self.table.clock
        for t, name in events[self.seen :]:
            self.file.write(json.dumps({"t_table": t, "wall_ns": clock.wall_ns_at(t), "event": name}) + "\n")
        self.seen = len(events)
        self.file.flush()


async def run(options: EmulatorOptions, ready=None) -> None:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    options.check()
    raise_priority()  # the emulated table stands in for hardware of its own: ahead of the test's work
    kernel.warm_up()
    emulated = EMULATED_KINDS[options.kind]
    table = emulated.build(options)
    capacity = GAUGE_CAPACITY_N[options.kind]
    gcl = GclGauge(table, capacity_n=capacity, seed=options.seed)
    scpi = ScpiGauge(table, capacity_n=capacity, seed=options.seed + 1)
    servers: list = []
    gauge_servers: list = []
    links: list[PtyLink] = []
    started = (time.perf_counter_ns(), time.process_time_ns())
    try:
        endpoints = await _serve(options, table, gcl, scpi, servers, gauge_servers, links)
        events = EventLog(table, options.events_path)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # what exists now lives as long as the process: out of the collector's way, so a
        # full collection does not hold up a reply by milliseconds
        gc.freeze()
        print(endpoints.line(), flush=True)
        if ready is not None:
            ready(endpoints)
        tick = min(max(TICK_TABLE_S / options.time_scale, TICK_WALL_S[0]), TICK_WALL_S[1])
        while not stop.is_set():
            table.sync()
            events.flush_new()
            await asyncio.sleep(tick)
    finally:
        if options.stats_path:
            write_stats(options.stats_path, started)
        for server in servers:
            await server.shutdown()
        for gserver in gauge_servers:
            await close_gauge_server(gserver)
        for link in links:
            link.close()


def write_stats(path: str, started: tuple[int, int]) -> None:
    """What the emulator cost and how promptly it answered, over its whole life."""
    wall_s = (time.perf_counter_ns() - started[0]) / 1e9
    cpu_s = (time.process_time_ns() - started[1]) / 1e9
    stats = {"wall_s": wall_s, "cpu_s": cpu_s, "cpu_s_per_wall_s": cpu_s / wall_s if wall_s else None,
             "niceness": os.getpriority(os.PRIO_PROCESS, 0), "replies": REPLIES.summary()}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(stats, f)


async def _serve(options: EmulatorOptions, table, gcl: GclGauge, scpi: ScpiGauge,
                 servers: list, gauge_servers: list, links: list[PtyLink]) -> Endpoints:
    """Start every server (appending each to the lists the caller closes); the endpoints."""
    host = options.host
    emulated = EMULATED_KINDS[options.kind]
    controller_line = gauge_line = None  # (the device served on, the one a client opens or None)
    if options.serial_lines:
        links += [PtyLink(), PtyLink()]
        controller_line = (links[0].end_a, links[0].end_b)
        gauge_line = (links[1].end_a, links[1].end_b)
    else:
        if options.controller_rtu:
            controller_line = (options.controller_rtu, None)
        if options.gauge_serial:
            gauge_line = (options.gauge_serial, None)
    if controller_line is not None:
        served_on, client = controller_line
        check_serial_line(served_on, RTU_BAUDRATE, options.parity)
        try:
            devices = controller_devices(table, options.unit_id, emulated.registers)
            servers.append(await serve_rtu(devices, served_on, parity=options.parity))
        except Exception as exc:  # noqa: BLE001 — pyserial raises termios.error too
            raise ConfigError(f"{served_on}: cannot serve Modbus RTU at {RTU_BAUDRATE} 8{options.parity}1 ({exc})") from None
        controller = serial_endpoint("rtu", served_on, client, baudrate=RTU_BAUDRATE, parity=options.parity,
                                     unit_id=options.unit_id)
    else:
        server, port = await serve_tcp(controller_devices(table, options.unit_id, emulated.registers), host)
        servers.append(server)
        controller = TcpEndpoint(host, port, options.unit_id)
    server, port = await serve_tcp(stimulus_devices(table, options.unit_id, emulated.relays), host)
    servers.append(server)
    stimulus = TcpEndpoint(host, port, options.unit_id)
    server, port = await serve_tcp(patient_simulator_devices(table), host)
    servers.append(server)
    patient_simulator = TcpEndpoint(host, port, 1)
    gauges = {}
    for dialect, gauge in (("gcl", gcl), ("scpi", scpi)):
        if dialect == "gcl" and gauge_line is not None:
            served_on, client = gauge_line
            gauge_servers.append(await serve_gauge_serial(gauge, served_on, SERIAL_BAUD))
            gauges[dialect] = serial_endpoint("serial", served_on, client, baudrate=SERIAL_BAUD, parity="N")
            continue
        gauges[dialect] = await _serve_socket(gauge, host, gauge_servers)
    served: dict = {}
    for role, model in emulated.instruments(table, options).items():
        if isinstance(model, dict):
            served[role] = {name: await _serve_socket(m, host, gauge_servers) for name, m in model.items()}
        else:
            served[role] = await _serve_socket(model, host, gauge_servers)
    return Endpoints(controller, stimulus, gauges, patient_simulator, kind=options.kind, seed=options.seed,
                     time_scale=options.time_scale, faults=tuple(options.faults), wear=options.wear,
                     serial=table.params.serial, pid=os.getpid(), **served)


async def _serve_socket(model, host: str, gauge_servers: list) -> SocketInstrument:
    """One line-protocol instrument on a raw socket of its own."""
    gserver = await serve_gauge(model, host, 0)
    gauge_servers.append(gserver)
    gport = gserver.sockets[0].getsockname()[1]
    return SocketInstrument(gport, socket_resource(host, gport))


def main(options: EmulatorOptions) -> int:
    try:
        asyncio.run(run(options))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(EmulatorOptions()))
