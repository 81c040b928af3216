"""The emulated rig as its own process: `rig emulate`.

One asyncio loop serves the controller and stimulus module (pymodbus) and both gauge
dialects (raw sockets) for one table, so the test process cannot disturb its timing.
On start it prints one JSON line with every endpoint; SIGTERM/SIGINT shut it down.
Optionally it appends ground-truth events (trigger and release instants in table time
and in this machine's monotonic clock) to a JSON-lines file, for benchmarks that judge
the rig's own latency measurements.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field

from rigs.emulator.gauge_server import serve_gauge
from rigs.emulator.gauges import GclGauge, ScpiGauge
from rigs.emulator.modbus_server import (
    controller_devices,
    patient_simulator_devices,
    serve_rtu,
    serve_tcp,
    stimulus_devices,
)
from rigs.emulator.table import EmulatedTable

GAUGE_CAPACITY_N = {"lumbar": 1000.0, "cervical": 500.0}
TICK_S = 0.002  # wall seconds between background model advances


@dataclass
class EmulatorOptions:
    kind: str = "lumbar"
    seed: int = 0
    time_scale: float = 1.0
    faults: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    unit_id: int = 1
    controller_rtu: str | None = None  # serial device for the controller (RTU)
    events_path: str | None = None


def socket_resource(host: str, port: int) -> str:
    return f"TCPIP::{host}::{port}::SOCKET"


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
    table = EmulatedTable(options.kind, options.seed, options.time_scale, options.faults)
    capacity = GAUGE_CAPACITY_N[table.params.kind.name.lower() if options.kind not in GAUGE_CAPACITY_N else options.kind]
    gcl = GclGauge(table, capacity_n=capacity, seed=options.seed)
    scpi = ScpiGauge(table, capacity_n=capacity, seed=options.seed + 1)
    host = options.host
    servers = []
    endpoints: dict = {
        "kind": options.kind,
        "seed": options.seed,
        "time_scale": options.time_scale,
        "faults": options.faults,
        "serial": table.params.serial,
        "pid": os.getpid(),
    }
    if options.controller_rtu:
        servers.append(await serve_rtu(controller_devices(table, options.unit_id), options.controller_rtu))
        endpoints["controller"] = {"transport": "rtu", "port": options.controller_rtu, "unit_id": options.unit_id}
    else:
        server, port = await serve_tcp(controller_devices(table, options.unit_id), host)
        servers.append(server)
        endpoints["controller"] = {"transport": "tcp", "host": host, "port": port, "unit_id": options.unit_id}
    server, port = await serve_tcp(stimulus_devices(table, options.unit_id), host)
    servers.append(server)
    endpoints["stimulus"] = {"host": host, "port": port, "unit_id": options.unit_id}
    server, port = await serve_tcp(patient_simulator_devices(table), host)
    servers.append(server)
    endpoints["patient_simulator"] = {"host": host, "port": port, "unit_id": 1}
    gauges = {}
    for dialect, gauge in (("gcl", gcl), ("scpi", scpi)):
        gserver = await serve_gauge(gauge, host, 0)
        gport = gserver.sockets[0].getsockname()[1]
        gauges[dialect] = {"port": gport, "resource": socket_resource(host, gport)}
    endpoints["gauges"] = gauges
    events = EventLog(table, options.events_path)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps(endpoints), flush=True)
    if ready is not None:
        ready(endpoints)
    try:
        while not stop.is_set():
            table.sync()
            events.flush_new()
            try:
                await asyncio.wait_for(stop.wait(), TICK_S)
            except asyncio.TimeoutError:
                pass
    finally:
        for server in servers:
            await server.shutdown()


def main(options: EmulatorOptions) -> int:
    try:
        asyncio.run(run(options))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(EmulatorOptions()))
