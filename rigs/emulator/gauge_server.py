"""Raw-socket and serial-line servers for the emulated gauges (one dialect per port/line).

Any line-protocol instrument model with `handle`, `poll`, `terminator`, `reply_terminator`
and a `source.clock` is served the same way: the `tilt` inclinometer
(rigs/emulator/inclinometer.py) uses these servers as they are.

asyncio Protocols rather than streams: the read path is one split and one dict
lookup per command, so a VISA client can poll thousands of readings a second.

Everything that touches a gauge model (and through it the table) runs on the event
loop thread, because the table is not thread-safe. The only other thread is the AOUT
*timer*: asyncio's selector rounds its timeouts up to whole milliseconds, which alone
would be a 1 ms jitter at AOUT1000, so a daemon thread sleeps to just before each
absolute wall deadline, yields the CPU until it, and asks the loop to emit the line.
Deadlines are computed from the stream's start (line k at table time T0 + k/n, mapped
to wall time by the table clock), never by adding periods, so no drift accumulates;
when the loop cannot keep up, missed lines are skipped rather than sent in a burst.

On a serial line (`serve_gauge_serial`, raw 115200 8N1 as a real gauge's port) the same
protocol runs over a tty transport: the line is one connection that never ends while
the server runs, so a stream a client forgets to stop keeps going, as on a real gauge.

`python -m rigs.emulator.gauge_server --dialect gcl,scpi` serves gauges on a synthetic
force (for benchmarks) and prints one JSON line with the ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from rigs.emulator.gauges import ChunkedReply
from rigs.emulator.latency import REPLIES
from rigs.emulator.serial_line import TtyTransport, open_raw_tty

log = logging.getLogger(__name__)

#: A line longer than this without a terminator is junk: it is discarded.
MAX_LINE = 64 * 1024
#: Stop queueing stream lines when the client does not read (bytes in the send buffer).
MAX_STREAM_BACKLOG = 1 << 20
#: Drop lines only when the loop has this many posted and not yet handled (it is stuck);
#: a merely late loop gets every line, each with the reading of its own instant.
MAX_STREAM_LAG_LINES = 5000
#: The AOUT timer wakes this early and yields the CPU in a loop until the deadline:
#: a plain sleep wakes ~0.1 ms late (up to ~0.5 ms at p99 on a VM), which is most of
#: the jitter budget at AOUT1000. Costs at most a quarter of each line period in CPU.
STREAM_SPIN_NS = 300_000
#: A gauge's serial port (shared/protocols/force-gauges.md): 115200 baud, 8N1.
SERIAL_BAUD = 115200


class _GaugeHost:
    """What the connections of one served gauge share."""

    def __init__(self, gauge, loop: asyncio.AbstractEventLoop) -> None:
        self.gauge = gauge
        self.loop = loop
        self.terminator: bytes = gauge.terminator
        self.reply_terminator: bytes = gauge.reply_terminator
        self.connections: set[_GaugeProtocol] = set()
        self.streamer: _Streamer | None = None
        self.poll_task: asyncio.Task | None = None

    def update_stream(self, conn: "_GaugeProtocol") -> None:
        """Start/stop the AOUT stream after a command changed the gauge's stream rate."""
        rate = getattr(self.gauge, "stream_rate_hz", 0)
        current = self.streamer
        if (current.rate_hz if current is not None else 0) == rate:
            return  # unchanged (another client's command does not steal the stream)
        if current is not None:
            current.stop()
            self.streamer = None
        if rate > 0:
            self.streamer = _Streamer(self, conn, rate)
            self.streamer.start()

    def connection_lost(self, conn: "_GaugeProtocol") -> None:
        self.connections.discard(conn)
        if self.streamer is not None and self.streamer.conn is conn:
            self.streamer.stop()
            self.streamer = None
            if getattr(self.gauge, "stream_rate_hz", 0):
                self.gauge.stream_rate_hz = 0  # nobody listens any more

    async def close(self) -> None:
        if self.streamer is not None:
            self.streamer.stop()
            self.streamer = None
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self.poll_task is not None:
            self.poll_task.cancel()
            await asyncio.gather(self.poll_task, return_exceptions=True)


class _GaugeProtocol(asyncio.Protocol):
    def __init__(self, host: _GaugeHost) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.discarding = False  # inside an over-long line: drop until the next terminator
        #: commands read and not yet answered, with the instant they were read; they wait
        #: (in order) while a chunked reply is being sent on this connection
        self.pending: deque[tuple[bytes, int]] = deque()
        self.pieces = None  # the rest of a chunked reply being sent, piece by piece
        self.piece_arrived_ns = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.host.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.host.connection_lost(self)
        self.transport = None
        self.pieces = None
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        term = self.host.terminator
        buf = self.buffer
        buf += data
        if term not in data:
            if len(buf) > MAX_LINE:
                buf.clear()
                self.discarding = True
            return
        arrived = time.perf_counter_ns()
        *lines, rest = buf.split(term)
        self.buffer = bytearray(rest)
        for raw in lines:
            if self.discarding:  # the tail of an over-long line
                self.discarding = False
                continue
            if len(raw) <= MAX_LINE:
                self.pending.append((raw, arrived))
        if len(self.buffer) > MAX_LINE:
            self.buffer.clear()
            self.discarding = True
        if self.pieces is None:
            self._answer()

    def _answer(self) -> None:
        """Answer the pending commands in order; a chunked reply hands over to _next_piece."""
        host = self.host
        out = []
        done: list[int] = []
        while self.pending and self.pieces is None:
            raw, arrived = self.pending.popleft()
            try:
                reply = host.gauge.handle(raw.decode("latin-1"))
            except Exception:  # a model bug must not take the server down
                log.exception("gauge model failed on %r", raw[:80])
                reply = None
            if isinstance(reply, ChunkedReply):
                self.pieces, self.piece_arrived_ns = iter(reply), arrived
                done.append(arrived)  # the answer starts now (its first piece, below)
            elif reply is not None:
                out.append(reply.encode("latin-1", "replace") + host.reply_terminator)
                done.append(arrived)
            else:
                done.append(arrived)  # answered by doing it: the contract sends nothing
            host.update_stream(self)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        if self.pieces is not None:
            self._next_piece()
        for arrived in done:
            REPLIES.add("gauge", arrived)

    def _next_piece(self) -> None:
        """Send one piece of the chunked reply, then let the loop serve others first."""
        if self.pieces is None or self.transport is None:
            return
        piece = next(self.pieces, None)
        if piece is not None:
            self.transport.write(piece.encode("latin-1", "replace"))
            self.host.loop.call_soon(self._next_piece)
            return
        self.transport.write(self.host.reply_terminator)
        REPLIES.add("gauge trace, whole", self.piece_arrived_ns)
        self.pieces = None
        self._answer()

    def emit_stream_line(self, streamer: "_Streamer", table_t: float | None = None) -> None:
        """Loop thread: one AOUT line, unless the stream was stopped meanwhile.

        The reading is the gauge's at the line's own instant on its clock (`table_t`),
        as a real gauge samples on its clock and then transmits: a late loop delays
        the line on the wire, not the moment it describes."""
        streamer.done += 1
        if streamer.stopped or self.transport is None or self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > MAX_STREAM_BACKLOG:
            streamer.skipped += 1
            return
        line = self.host.gauge.stream_line(table_t)
        self.transport.write(line.encode("latin-1", "replace") + self.host.reply_terminator)


def stream_deadline_ns(wall0_ns: int, k: int, rate_hz: float, time_scale: float) -> int:
    """Wall perf_counter_ns of AOUT line k: table time T0 + k/rate, K table s per wall s.

    Computed from k every time (never by adding periods), so rounding cannot drift.
    """
    return wall0_ns + round(k * 1e9 / (rate_hz * time_scale))


class _Streamer(threading.Thread):
    """Wakes at each line's absolute wall deadline and has the loop emit the line."""

    def __init__(self, host: _GaugeHost, conn: _GaugeProtocol, rate_hz: float) -> None:
        super().__init__(name=f"gauge-aout-{rate_hz}", daemon=True)
        self.host = host
        self.conn = conn
        self.rate_hz = rate_hz
        self.stopped = False
        self.posted = 0  # lines handed to the loop (this thread writes it)
        self.done = 0  # lines the loop handled (the loop thread writes it)
        self.skipped = 0
        self._stop_event = threading.Event()
        clock = host.gauge.source.clock
        scale = float(getattr(clock, "time_scale", 1.0))
        t0 = clock.now()
        self.table0 = t0
        self.wall0_ns = time.perf_counter_ns()
        wall_ns_at = getattr(clock, "wall_ns_at", None)
        if wall_ns_at is not None:  # the table clock's own mapping, unless it is a manual clock
            mapped = wall_ns_at(t0)
            if abs(mapped - self.wall0_ns) < 1_000_000_000:
                self.wall0_ns = mapped
        self.time_scale = scale
        self.period_ns = 1e9 / (rate_hz * scale)  # wall nanoseconds between lines

    def stop(self) -> None:
        self.stopped = True
        self._stop_event.set()

    def run(self) -> None:
        loop, conn = self.host.loop, self.conn
        clock_ns, yield_cpu = time.perf_counter_ns, os.sched_yield  # sched_yield drops the GIL
        # on a fast table clock the line rate is K times higher and the spin would eat a
        # core the rig needs; lines still carry the reading of their own instant
        spin_ns = 0 if self.time_scale > 1 else min(STREAM_SPIN_NS, self.period_ns / 4)
        k = 0
        while not self.stopped:
            deadline = stream_deadline_ns(self.wall0_ns, k, self.rate_hz, self.time_scale)
            wait_ns = deadline - clock_ns() - spin_ns
            if wait_ns > 0 and self._stop_event.wait(wait_ns * 1e-9):
                return
            while clock_ns() < deadline and not self.stopped:
                yield_cpu()
            if self.posted - self.done > MAX_STREAM_LAG_LINES:
                # the loop itself is stuck: drop this line rather than queue without bound
                self.skipped += 1
                k += 1
                continue
            # a late thread posts every line it owes (a real gauge samples on its own
            # clock and queues its output): each line carries its own instant
            self.posted += 1
            try:
                loop.call_soon_threadsafe(conn.emit_stream_line, self, self.table0 + k / self.rate_hz)
            except RuntimeError:  # loop closed
                return
            k += 1


def poll_interval_s(time_scale: float) -> float:
    """Wall seconds between catch-up polls: one table second (at most 0.1 s wall, at least
    1 ms). A query catches the model up itself before it answers, so the polls only keep
    the peaks and buffers within the source's ~16 s of history; polling more often costs
    an idle emulator CPU (a flexion-distraction bench serves five instruments) and adds
    nothing to what any reply says: the samples are drawn by index, whatever the batch."""
    return max(0.001, min(0.1, 1.0 / time_scale))


async def _poll_forever(server: asyncio.AbstractServer, gauge) -> None:
    """Keep the model's rings and buffers caught up between commands."""
    scale = float(getattr(gauge.source.clock, "time_scale", 1.0))
    interval = poll_interval_s(scale)
    while server.is_serving():
        try:
            gauge.poll()
        except Exception:
            log.exception("gauge poll failed")
        await asyncio.sleep(interval)


async def serve_gauge(gauge, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Serve one gauge model on a raw TCP socket; port 0 picks a free one.

    The returned server carries `gauge_host`; `close_gauge_server(server)` also drops
    the open connections and stops streaming (plain `server.close()` only stops
    listening, as asyncio does).
    """
    loop = asyncio.get_running_loop()
    ctx = _GaugeHost(gauge, loop)
    server = await loop.create_server(lambda: _GaugeProtocol(ctx), host, port)
    server.gauge_host = ctx  # type: ignore[attr-defined]
    ctx.poll_task = loop.create_task(_poll_forever(server, gauge))
    return server


class SerialGaugeServer:
    """One gauge on one serial line: the `asyncio.Server` surface that the poll task and
    `close_gauge_server` use, for a line that has exactly one, permanent, connection."""

    def __init__(self, device: str, host: _GaugeHost) -> None:
        self.device = device
        self.gauge_host = host
        self.transport: asyncio.Transport | None = None
        self._closed = asyncio.Event()

    def is_serving(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()


class _LineProtocol(_GaugeProtocol):
    """The gauge protocol on a serial line, whose one connection ending ends the server."""

    def __init__(self, host: _GaugeHost, server: SerialGaugeServer) -> None:
        super().__init__(host)
        self.server = server

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        self.server._closed.set()


async def serve_gauge_serial(gauge, device: str, baudrate: int = SERIAL_BAUD) -> SerialGaugeServer:
    """Serve one gauge model on a serial device (a tty path), raw 8N1 at `baudrate`.

    Same protocol objects as `serve_gauge`, so a gauge behaves identically on a socket
    and on a line, AOUT streaming included; the line is the only "connection", and
    `close_gauge_server(server)` stops it like a socket server.
    """
    loop = asyncio.get_running_loop()
    ctx = _GaugeHost(gauge, loop)
    server = SerialGaugeServer(device, ctx)
    protocol = _LineProtocol(ctx, server)
    server.transport = TtyTransport(loop, open_raw_tty(device, baudrate), protocol, device)
    ctx.poll_task = loop.create_task(_poll_forever(server, gauge))
    return server


async def close_gauge_server(server: asyncio.Server) -> None:
    ctx = getattr(server, "gauge_host", None)
    server.close()
    if ctx is not None:
        await ctx.close()
    await server.wait_closed()


def server_port(server: asyncio.Server) -> int:
    return server.sockets[0].getsockname()[1]


class GaugeServerThread:
    """An event loop in a background thread serving gauges (tests, notebooks).

    `factory()` builds the gauge models on the loop thread; they are served on
    ephemeral ports of `host`, listed in `ports` (same order), or on the serial
    devices in `lines` (port None).
    """

    def __init__(self, factory: Callable[[], list], host: str = "127.0.0.1",
                 lines: list[str | None] | None = None) -> None:
        self.factory = factory
        self.host = host
        self.lines = list(lines or [])  # gauge i on serial device lines[i] when given
        self.ports: list[int | None] = []
        self.gauges: list = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.Server] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gauge-servers", daemon=True)

    def __enter__(self) -> "GaugeServerThread":
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("gauge servers did not start within 10 s")
        if self._error is not None:
            raise RuntimeError("gauge servers failed to start") from self._error
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def call(self, fn: Callable, *args, timeout: float = 5.0):
        """Run fn(*args) on the loop thread (the models are not thread-safe)."""
        assert self.loop is not None

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._start())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _start(self) -> None:
        self.gauges = list(self.factory())
        for i, gauge in enumerate(self.gauges):
            line = self.lines[i] if i < len(self.lines) else None
            if line:
                self._servers.append(await serve_gauge_serial(gauge, line))
                self.ports.append(None)
            else:
                server = await serve_gauge(gauge, self.host, 0)
                self._servers.append(server)
                self.ports.append(server_port(server))

    async def _shutdown(self) -> None:
        for server in self._servers:
            await close_gauge_server(server)
        await asyncio.sleep(0)

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10.0)


# ---------------------------------------------------------------------------------------
# standalone entry: gauges on a synthetic force, for benchmarks
# ---------------------------------------------------------------------------------------


class SyntheticForceSource:
    """A ForceSource from a closed-form force (a slow sine), on a real TableClock."""

    HISTORY_S = 16.0

    def __init__(self, clock, mean_n: float = 200.0, amplitude_n: float = 50.0, freq_hz: float = 0.5) -> None:
        self.clock = clock
        self.mean_n, self.amplitude_n, self.freq_hz = mean_n, amplitude_n, freq_hz
        self._now = clock.now()

    def sync(self) -> float:
        self._now = self.clock.now()
        return self._now

    def force_at(self, times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=float)
        return self.mean_n + self.amplitude_n * np.sin(2.0 * math.pi * self.freq_hz * times)

    def history_start(self) -> float:
        return max(0.0, self._now - self.HISTORY_S)


async def _main_async(args: argparse.Namespace) -> None:
    from rigs.emulator.clock import TableClock
    from rigs.emulator.gauges import GclGauge, ScpiGauge

    source = SyntheticForceSource(TableClock(args.time_scale))
    makers = {"gcl": GclGauge, "scpi": ScpiGauge}
    info: dict = {"host": args.host, "time_scale": args.time_scale}
    servers = []
    for i, dialect in enumerate(d.strip() for d in args.dialect.split(",")):
        gauge = makers[dialect](source, capacity_n=args.capacity, seed=args.seed + i)
        server = await serve_gauge(gauge, args.host, 0)
        servers.append(server)
        info[dialect] = server_port(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps(info), flush=True)
    await stop.wait()
    for server in servers:
        await close_gauge_server(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", default="gcl,scpi", help="gcl, scpi or gcl,scpi")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--capacity", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
