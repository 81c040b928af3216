"""A fault-injecting TCP proxy: one listening port on 127.0.0.1 in front of one device port.

Why our own: the rig's promise (whatever happens to a link, the table ends released) is
only as good as the faults it was tried against, and a link breaks in more ways than a
dead process: it can be cut (sever), go silent with both ends still open (stall), slow
down (delay), refuse the reconnect that follows a cut (refuse), or deliver bytes that are
not what the device said (garbage). Each of those is one call here, applied to every
connection through the proxy at once, and stamped with `time.perf_counter_ns()` (the
same CLOCK_MONOTONIC the emulator's ground truth and the heartbeat process use), so the
matrix can measure from the instant the fault took effect; `first_use_ns` is when the
client next touched the link after the first fault since the last heal (a byte sent, a
connection attempted; faults stacked on it, e.g. refuse after sever, keep that watch):
a fault on a link nobody uses has not happened yet, as far as the rig can know.

Faults:
  sever            close both sides of every current connection now (new ones are served)
  stall            keep every connection open, forward no byte either way (held, not lost:
                   on heal they are delivered, as TCP would after a link comes back)
  delay MS         add MS milliseconds to every chunk, each direction, order kept
  refuse [reset]   stop listening: new connections are refused (ECONNREFUSED); current
                   ones are kept (after a sever: a refused reconnect). With `reset`, still
                   listening but every new connection is reset at once, so the attempt is seen
  garbage [N] [corrupt [F]]  N random bytes toward the client now; with `corrupt`, the
                   next F chunks (default 1) from the device have their bytes replaced
                   instead (same length)
  heal             undo stall, delay and refuse (listening again on the same port)

Control: from this process through the methods (thread-safe; the proxy runs an asyncio
loop in a thread of its own), from another process through a control socket on
127.0.0.1 (one command per line, one JSON line back) — `ProxyControl(port).send("stall")`
or `python -m rigs.linkfaults.proxy send --control PORT stall`. A proxy of its own as a
process: `python -m rigs.linkfaults.proxy serve --target HOST:PORT` prints one JSON line
(`port`, `control_port`, `target`) and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

#: wall seconds a control call waits for the proxy's loop
CALL_TIMEOUT_S = 5.0
CHUNK = 65536
FAULTS = ("sever", "stall", "delay", "refuse", "garbage", "heal")


class ProxyError(RuntimeError):
    """A proxy could not start, or refused a command (one line naming the proxy)."""


@dataclass
class _Direction:
    """One way through one connection: chunks waiting for their instant, in order."""

    queue: deque = field(default_factory=deque)  # (due_ns, bytes)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    bytes: int = 0


@dataclass(eq=False)
class _Connection:
    client_writer: asyncio.StreamWriter
    device_writer: asyncio.StreamWriter
    client_reader: asyncio.StreamReader | None = None
    to_device: _Direction = field(default_factory=_Direction)
    to_client: _Direction = field(default_factory=_Direction)
    tasks: list = field(default_factory=list)
    closed: bool = False
    last_request_ns: int = 0  # the client's last bytes in
    last_answer_ns: int = 0  # the last bytes delivered to the client

    @property
    def waiting(self) -> bool:
        """The client sent something it has had no answer to: it is using the link now."""
        return self.last_request_ns > self.last_answer_ns


class FaultProxy:
    """One link's proxy. `start()` binds; `port` is what the client connects to."""

    def __init__(self, target_host: str, target_port: int, *, name: str = "link", host: str = "127.0.0.1",
                 port: int = 0, seed: int = 0, control: bool = True) -> None:
        self.name = name
        self.target = (target_host, int(target_port))
        self.host = host
        self.port = int(port)
        self.control_port: int | None = None
        self._want_control = control
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._control_server: asyncio.base_events.Server | None = None
        self._connections: set[_Connection] = set()
        self._opening: set[asyncio.StreamWriter] = set()
        self._lingering: set[asyncio.StreamWriter] = set()  # severed clients, watched for their next use
        self._flowing: asyncio.Event | None = None
        self._delay_ns = 0
        self._corrupt_next = 0  # chunks toward the client still to be corrupted
        self.refusing = False
        self._reset_new = False  # refusing by resetting accepted connections (attempts are seen)
        self.refused_attempts = 0
        self.first_use_ns: int | None = None  # the client's first use of the link after the last fault
        self._watching = False
        self.connections_total = 0
        self.bytes_to_device = 0
        self.bytes_to_client = 0
        self.garbage_bytes = 0
        self.log: list[tuple[int, str]] = []  # (perf_counter_ns, what) for every fault applied

    # ------------------------------------------------------------ life
    def start(self) -> "FaultProxy":
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._bind())
            except BaseException as exc:  # noqa: BLE001 — reported to start()'s caller
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fault-proxy {self.name}", daemon=True)
        self._thread.start()
        if not started.wait(CALL_TIMEOUT_S) or failure:
            why = failure[0] if failure else "timed out"
            raise ProxyError(f"fault proxy {self.name}: cannot listen on {self.host}:{self.port} ({why})")
        return self

    async def _bind(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        if self._want_control:
            self._control_server = await asyncio.start_server(self._control, "127.0.0.1", 0)
            self.control_port = self._control_server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        for server in (self._server, self._control_server):
            if server is not None:
                server.close()
        self._sever_all()
        for writer in list(self._lingering):
            writer.transport.abort()
        await asyncio.sleep(0)

    def close(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT_S)

    def __enter__(self) -> "FaultProxy":
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # ------------------------------------------------------------ faults (any thread)
    def sever(self) -> int:
        return self._call(self._apply("sever"))

    def stall(self) -> int:
        return self._call(self._apply("stall"))

    def delay(self, ms: float) -> int:
        return self._call(self._apply("delay", ms))

    def refuse(self, reset: bool = False) -> int:
        return self._call(self._apply("refuse", reset))

    def garbage(self, nbytes: int = 32, corrupt: bool = False, frames: int = 1) -> int:
        return self._call(self._apply("garbage", nbytes, corrupt, frames))

    def heal(self) -> int:
        return self._call(self._apply("heal"))

    def command(self, line: str) -> int:
        """One control line ("delay 50", "garbage 16 corrupt") applied; its instant."""
        return self._call(self._apply(*_parse(line)))

    def state(self) -> dict:
        return self._call(self._state())

    def _call(self, coro):
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            coro.close()
            raise ProxyError(f"fault proxy {self.name}: not running (start() it first)")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT_S)

    # ------------------------------------------------------------ faults (loop thread)
    async def _apply(self, fault: str, *args) -> int:
        waiting = any(c.waiting for c in self._connections)  # before a sever forgets them
        if fault == "sever":
            self._sever_all()
        elif fault == "stall":
            self._flowing.clear()
        elif fault == "delay":
            ms = float(args[0])
            if ms < 0:
                raise ProxyError(f"fault proxy {self.name}: delay {ms:g} ms: must be >= 0")
            self._delay_ns = int(ms * 1e6)
        elif fault == "refuse":
            if args and args[0]:
                self._reset_new = True
            elif self._server is not None:
                self._server.close()  # the port is free: a connect is refused by the kernel
                self._server = None
            self.refusing = True
        elif fault == "garbage":
            nbytes = int(args[0]) if args else 32
            corrupt = bool(args[1]) if len(args) > 1 else False
            if corrupt:
                self._corrupt_next += int(args[2]) if len(args) > 2 else 1
            else:
                for conn in list(self._connections):
                    noise = self._noise(nbytes)
                    conn.client_writer.write(noise)
                    self.garbage_bytes += len(noise)
        elif fault == "heal":
            self._delay_ns = 0
            self._flowing.set()
            if self._server is None:
                self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
            self.refusing = self._reset_new = False
            self._corrupt_next = 0
        else:
            raise ProxyError(f"fault proxy {self.name}: unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        at = time.perf_counter_ns()
        self.log.append((at, " ".join([fault, *map(str, args)])))
        if fault == "heal":
            self.first_use_ns, self._watching = None, False
        elif not self._watching:  # the first fault since the last heal starts the watch
            self.first_use_ns, self._watching = None, True
            if waiting or any(c.waiting for c in self._connections):
                self.first_use_ns = at  # a request in flight meets the fault at once
        return at

    def _used(self) -> None:
        if self._watching and self.first_use_ns is None:
            self.first_use_ns = time.perf_counter_ns()

    def _noise(self, nbytes: int) -> bytes:
        return bytes(self._rng.getrandbits(8) for _ in range(max(1, nbytes)))

    def _sever_all(self) -> None:
        for writer in list(self._opening):
            writer.transport.abort()
        for conn in list(self._connections):
            self._drop(conn, watch=True)

    async def _after_sever(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The client has been told the link closed (FIN); its next byte is its next use of
        the link (seen, then reset), which a closed socket would hide from the proxy."""
        try:
            if await reader.read(1):
                self._used()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._lingering.discard(writer)
            writer.transport.abort()

    def _drop(self, conn: _Connection, watch: bool = False) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._connections.discard(conn)
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()
        conn.device_writer.transport.abort()
        client = conn.client_writer
        if watch and conn.client_reader is not None and client.can_write_eof() and not client.transport.is_closing():
            client.write_eof()  # both sides closed as far as the client can tell
            self._lingering.add(client)
            asyncio.ensure_future(self._after_sever(conn.client_reader, client))
        else:
            client.transport.abort()

    async def _state(self) -> dict:
        return {"name": self.name, "port": self.port, "target": f"{self.target[0]}:{self.target[1]}",
                "stalled": not self._flowing.is_set(), "delay_ms": self._delay_ns / 1e6,
                "refusing": self.refusing, "refused_attempts": self.refused_attempts,
                "first_use_ns": self.first_use_ns, "connections": len(self._connections),
                "connections_total": self.connections_total, "bytes_to_device": self.bytes_to_device,
                "bytes_to_client": self.bytes_to_client, "garbage_bytes": self.garbage_bytes,
                "corrupt_pending": self._corrupt_next}

    # ------------------------------------------------------------ forwarding
    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._used()
        if self._reset_new:
            self.refused_attempts += 1
            sock = client_writer.get_extra_info("socket")
            if sock is not None:  # an RST, not a FIN: the connect is refused, not ended
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client_writer.transport.abort()
            return
        self._opening.add(client_writer)  # a sever while the device connection opens cuts it too
        try:
            device_reader, device_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()  # the device is down: so is the link
            return
        finally:
            self._opening.discard(client_writer)
        if client_writer.transport.is_closing():
            device_writer.transport.abort()
            return
        conn = _Connection(client_writer, device_writer, client_reader)
        self._connections.add(conn)
        self.connections_total += 1
        conn.tasks = [
            asyncio.ensure_future(self._read(conn, client_reader, conn.to_device)),
            asyncio.ensure_future(self._write(conn, device_writer, conn.to_device, "to_device")),
            asyncio.ensure_future(self._read(conn, device_reader, conn.to_client)),
            asyncio.ensure_future(self._write(conn, client_writer, conn.to_client, "to_client")),
        ]

    async def _read(self, conn: _Connection, reader: asyncio.StreamReader, way: _Direction) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if way is conn.to_device:
                    self._used()
                    conn.last_request_ns = time.perf_counter_ns()
                way.queue.append((time.perf_counter_ns() + self._delay_ns, data))
                way.ready.set()
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            return
        # one end closed: deliver what was already read (unless stalled), then close both
        way.queue.append((0, b""))
        way.ready.set()

    async def _write(self, conn: _Connection, writer: asyncio.StreamWriter, way: _Direction, name: str) -> None:
        try:
            while True:
                while not way.queue:
                    way.ready.clear()
                    await way.ready.wait()
                await self._flowing.wait()
                due, data = way.queue[0]
                wait_ns = due - time.perf_counter_ns()
                if wait_ns > 0:
                    await asyncio.sleep(wait_ns / 1e9)
                    continue  # a stall may have begun meanwhile: check the gate again
                way.queue.popleft()
                if not data:
                    break
                if name == "to_client" and self._corrupt_next:
                    self._corrupt_next -= 1
                    data = self._noise(len(data))
                    self.garbage_bytes += len(data)
                writer.write(data)
                await writer.drain()
                way.bytes += len(data)
                if name == "to_client":
                    self.bytes_to_client += len(data)
                    conn.last_answer_ns = time.perf_counter_ns()
                else:
                    self.bytes_to_device += len(data)
        except (OSError, ConnectionError):
            pass
        except asyncio.CancelledError:
            return
        self._drop(conn)

    # ------------------------------------------------------------ control socket
    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                text = line.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    if text == "state":
                        reply = {"ok": True, "state": await self._state()}
                    else:
                        reply = {"ok": True, "at_ns": await self._apply(*_parse(text))}
                except (ProxyError, ValueError, IndexError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                except OSError as exc:  # e.g. heal cannot listen again
                    reply = {"ok": False, "error": f"fault proxy {self.name}: {exc}"}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            writer.transport.abort()


def _parse(line: str) -> tuple:
    """A control line as (fault, *args): "delay 50", "garbage 16 corrupt"."""
    words = line.split()
    if not words:
        raise ProxyError("empty control line; one of " + ", ".join(FAULTS))
    fault, rest = words[0].lower(), words[1:]
    if fault == "delay":
        if len(rest) != 1:
            raise ProxyError("delay needs one argument: milliseconds (e.g. `delay 50`)")
        return fault, float(rest[0])
    if fault == "garbage":
        nbytes = int(rest[0]) if rest and rest[0] != "corrupt" else 32
        corrupt = "corrupt" in rest
        frames = int(rest[rest.index("corrupt") + 1]) if corrupt and rest[-1] != "corrupt" else 1
        return fault, nbytes, corrupt, frames
    if fault == "refuse":
        if rest not in ([], ["reset"]):
            raise ProxyError(f"refuse takes nothing or `reset`, got {' '.join(rest)!r}")
        return fault, bool(rest)
    if rest:
        raise ProxyError(f"{fault} takes no argument, got {' '.join(rest)!r}")
    return (fault,)


class ProxyControl:
    """A proxy's control socket, from any process."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.address = (host, int(port))
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buffer = b""

    def send(self, line: str) -> dict:
        """One command; its JSON answer. A refused command raises ProxyError with its reason."""
        if self._sock is None:
            try:
                self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
            except OSError as exc:
                raise ProxyError(f"fault proxy control {self.address[0]}:{self.address[1]}: cannot connect "
                                 f"({exc.strerror or exc}); is the proxy running?") from None
        self._sock.sendall(line.strip().encode() + b"\n")
        while b"\n" not in self._buffer:
            data = self._sock.recv(4096)
            if not data:
                raise ProxyError(f"fault proxy control {self.address[0]}:{self.address[1]}: closed")
            self._buffer += data
        reply, self._buffer = self._buffer.split(b"\n", 1)
        answer = json.loads(reply)
        if not answer.get("ok"):
            raise ProxyError(answer.get("error", "refused"))
        return answer

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "ProxyControl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT (e.g. 127.0.0.1:5020)")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rigs.linkfaults.proxy",
                                     description="a fault-injecting TCP proxy in front of one device port")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="proxy one port; prints its ports as one JSON line")
    serve.add_argument("--target", type=_target, required=True, metavar="HOST:PORT")
    serve.add_argument("--port", type=int, default=0, help="listening port (default: an ephemeral one)")
    serve.add_argument("--name", default="link")
    send = sub.add_parser("send", help="send one command to a running proxy's control port")
    send.add_argument("--control", type=int, required=True, metavar="PORT")
    send.add_argument("words", nargs="+",
                      help="sever | stall | delay MS | refuse [reset] | garbage [N] [corrupt [F]] | heal | state")
    args = parser.parse_args(argv)
    if args.command == "send":
        try:
            with ProxyControl(args.control) as control:
                print(json.dumps(control.send(" ".join(args.words))))
        except ProxyError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        return 0
    try:
        proxy = FaultProxy(*args.target, name=args.name, port=args.port).start()
    except ProxyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps({"name": proxy.name, "port": proxy.port, "control_port": proxy.control_port,
                      "target": f"{args.target[0]}:{args.target[1]}"}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
