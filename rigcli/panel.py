"""`rig panel`: the live bench panel (a browser page) for a run, and the child `rig run
--panel` starts.

The panel is its own process, niced, so a page left open (or a slow browser) never
competes with the suites for the CPU; started by `rig run` it also dies with it (the
kernel kills it when its parent goes), in its own session so a Ctrl-C meant for the run
does not take the page away before the run has recorded how it ended.
"""

from __future__ import annotations

import argparse
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 8765
#: wall seconds `rig run` waits for its panel to serve
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


def add_parser(sub) -> None:
    panel = sub.add_parser("panel", help="serve the live bench panel (a browser page) for a run, running or finished")
    panel.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run directory (holds record.jsonl); several: "
                       "one tab each")
    panel.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                       "only; the page can answer operator questions, so open it wider only on a trusted bench network)")
    panel.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    panel.add_argument("--no-open", action="store_true", help="do not open a browser")
    # internal: `rig run --panel` follows the run directories its workers announce
    panel.add_argument("--announce", metavar="FILE", help=argparse.SUPPRESS)
    panel.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    panel.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    panel.set_defaults(func=main)


def _say(line: str) -> int:
    print(f"rig panel: {line}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    from reports.record import RECORD_NAME

    ready = os.fdopen(args.ready_fd, "w", encoding="utf-8") if args.ready_fd is not None else None

    def tell(kind: str, text: str) -> None:
        if ready is not None:
            ready.write(f"{kind} {text}\n")
            ready.flush()

    try:
        if args.parent_pid is not None:
            from drivers.heartbeat import _die_with_parent

            _die_with_parent()
            if os.getppid() != args.parent_pid:
                return 1  # the parent died before the guard was set
        try:
            os.nice(10)
        except OSError:
            pass
        if not 0 <= args.port <= 65535:
            tell("error", f"--port {args.port}: a port is 0 to 65535")
            return _say(f"--port {args.port}: a port is 0 to 65535")
        if not args.run_dirs and not args.announce:
            return _say("give the run directory to show (RUN_DIR, the one holding record.jsonl)")
        for d in args.run_dirs:
            if not (Path(d) / RECORD_NAME).is_file():
                return _say(f"{d}: no {RECORD_NAME} there — not a run directory")
        from reports.panel.runs import RunSet
        from reports.panel.server import (
            CannotBind,
            PortInUse,
            bind,
            make_server,
            open_browser,
            url_of,
        )

        try:
            sock = bind(args.host, args.port)
        except PortInUse:
            tell("in-use", f"{args.host} {args.port}")
            return _say(f"port {args.port} on {args.host} is in use — give --port another (0: any free port)")
        except CannotBind as exc:
            tell("error", str(exc))
            return _say(str(exc))
        url = url_of(sock, args.host)
        runs = RunSet([Path(d) for d in args.run_dirs], announce=Path(args.announce) if args.announce else None)

        def started() -> None:
            if ready is not None:
                tell("ready", url)
                ready.close()
            else:
                print(f"panel: {url}", flush=True)
            if not args.no_open:
                open_browser(url)

        server = make_server(runs, on_started=started)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
        return 0
    finally:
        if ready is not None and not ready.closed:
            ready.close()


# ---------------------------------------------------------------- the child of `rig run --panel`
class PanelChild:
    """The panel process `rig run --panel` started: its URL, and how to stop it."""

    def __init__(self, process: subprocess.Popen, url: str) -> None:
        self.process = process
        self.url = url

    def stop(self) -> None:
        p = self.process
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(STOP_TIMEOUT_S)


def start_child(announce: Path, host: str, port: int, timeout_s: float = START_TIMEOUT_S) -> PanelChild:
    """Start the panel on an announce file and wait (bounded) until it serves; RigError (one
    line, exit 2) when it cannot."""
    from drivers.errors import RigError

    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "rigcli", "panel", "--announce", str(announce), "--host", host, "--port", str(port),
           "--ready-fd", str(write_fd), "--parent-pid", str(os.getpid())]
    try:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, pass_fds=(write_fd,), cwd=str(PROJECT_ROOT),
                                   start_new_session=True)
    except OSError as exc:
        os.close(read_fd)
        raise RigError(f"--panel: the panel process could not start: {exc}") from None
    finally:
        os.close(write_fd)
    child = PanelChild(process, "")
    reply, timed_out = b"", False
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(read_fd, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout_s
            while b"\n" not in reply:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    timed_out = True
                    break
                chunk = os.read(read_fd, 4096)
                if not chunk:
                    break
                reply += chunk
    finally:
        os.close(read_fd)
    kind, _, text = reply.decode("utf-8", "replace").partition("\n")[0].partition(" ")
    if kind == "ready":
        child.url = text.strip()
        return child
    child.stop()
    if kind == "in-use":
        where_host, _, where_port = text.partition(" ")
        raise RigError(f"--panel: port {where_port} on {where_host} is in use — give --panel-port another "
                       "(0: any free port)")
    if kind == "error":
        raise RigError(f"--panel: {text}")
    if timed_out:
        raise RigError(f"--panel: the panel did not serve within {timeout_s:g} s")
    raise RigError(f"--panel: the panel process ended (exit status {process.returncode}) before it served")
