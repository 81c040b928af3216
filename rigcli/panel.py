"""`rig panel`: the live bench panel (a browser page) for a run, and the child `rig run
--panel` starts.

The panel is its own process, niced, so a page left open (or a slow browser) never
competes with the suites for the CPU; started by `rig run` it also dies with it (the
kernel kills it when its parent goes), in its own session so a Ctrl-C meant for the run
does not take the page away before the run has recorded how it ended.

The run's key (reports/panel/guard.py) is made by whoever starts the panel — `rig panel`
itself, or `rig run` for its child, which hands it over on the child's stdin (never its
command line, which every local user can read in /proc) — and is shown only in the
printed URL. An address beyond the loopback needs --allow-remote (`rig run`:
--panel-allow-remote) and is confirmed by a warning on stderr.
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
                       "only; the page can answer operator questions, so any other address needs --allow-remote)")
    panel.add_argument("--allow-remote", action="store_true", help="allow a --host beyond the loopback (0.0.0.0, a "
                       "network address): anyone who gets the URL can then answer; a trusted bench network only")
    panel.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    panel.add_argument("--no-open", action="store_true", help="do not open a browser")
    # internal: `rig run --panel` follows the run directories its workers announce
    panel.add_argument("--announce", metavar="FILE", help=argparse.SUPPRESS)
    panel.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    panel.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    panel.add_argument("--key-stdin", action="store_true", help=argparse.SUPPRESS)
    panel.set_defaults(func=main)


def _say(line: str) -> int:
    print(f"rig panel: {line}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    from reports.rundir import RECORD_NAME

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
        from drivers.errors import RigError
        from rigcli.exposure import panel_listen

        try:
            warning = panel_listen(args.host, args.allow_remote, option="--host", allow_option="--allow-remote")
        except RigError as exc:
            tell("error", str(exc))
            return _say(str(exc))
        if warning is not None and ready is None:  # `rig run` said it already for its child
            print(f"rig panel: {warning}", file=sys.stderr, flush=True)
        for d in args.run_dirs:
            if not (Path(d) / RECORD_NAME).is_file():
                return _say(f"{d}: no {RECORD_NAME} there — not a run directory")
        from reports.panel.guard import new_token, valid_token
        from reports.panel.runs import RunSet
        from reports.panel.server import (
            CannotBind,
            PortInUse,
            bind,
            guard_for,
            make_server,
            open_browser,
            remote_url_of,
            url_of,
        )

        if args.key_stdin:
            key = sys.stdin.readline().strip()
            if not valid_token(key):
                tell("error", "the panel's key did not arrive on its stdin")
                return _say("--key-stdin: no valid key on stdin")
        else:
            key = new_token()

        try:
            sock = bind(args.host, args.port)
        except PortInUse:
            tell("in-use", f"{args.host} {args.port}")
            return _say(f"port {args.port} on {args.host} is in use — give --port another (0: any free port)")
        except CannotBind as exc:
            tell("error", str(exc))
            return _say(str(exc))
        url, remote = url_of(sock, args.host, key), remote_url_of(sock, args.host, key)
        runs = RunSet([Path(d) for d in args.run_dirs], announce=Path(args.announce) if args.announce else None)

        def started() -> None:
            if ready is not None:
                tell("ready", f"{url} {remote}" if remote else url)
                ready.close()
            else:
                for line in announce_lines(url, remote):
                    print(line, flush=True)
            if not args.no_open:
                open_browser(url)

        server = make_server(runs, guard_for(sock, args.host, key), on_started=started)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
        return 0
    finally:
        if ready is not None and not ready.closed:
            ready.close()


def announce_lines(url: str, remote: str | None) -> list[str]:
    """What the terminal shows: the URL that works here first (`panel: URL`, the line tools
    look for), then on a wildcard bind the one for the other machines."""
    lines = [f"panel: {url}"]
    if remote:
        lines.append(f"panel: from other machines: {remote} (listening on every interface; "
                     "the URL above is for this machine)")
    return lines


# ---------------------------------------------------------------- the child of `rig run --panel`
class PanelChild:
    """The panel process `rig run --panel` started: its URLs, and how to stop it."""

    def __init__(self, process: subprocess.Popen, url: str, remote_url: str | None = None) -> None:
        self.process = process
        self.url = url
        self.remote_url = remote_url

    def stop(self) -> None:
        p = self.process
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(STOP_TIMEOUT_S)


def start_child(announce: Path, host: str, port: int, timeout_s: float = START_TIMEOUT_S, *,
                allow_remote: bool = False, key: str | None = None) -> PanelChild:
    """Start the panel on an announce file with a new key (or `key`) and wait (bounded)
    until it serves; RigError (one line, exit 2) when it cannot. The caller has checked
    (and warned about) a host beyond the loopback."""
    from drivers.errors import RigError
    from reports.panel.guard import new_token

    key = key or new_token()
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "rigcli", "panel", "--announce", str(announce), "--host", host, "--port", str(port),
           "--ready-fd", str(write_fd), "--parent-pid", str(os.getpid()), "--key-stdin"]
    if allow_remote:
        cmd.append("--allow-remote")
    try:
        process = subprocess.Popen(cmd, stdin=subprocess.PIPE, pass_fds=(write_fd,), cwd=str(PROJECT_ROOT),
                                   start_new_session=True)
    except OSError as exc:
        os.close(read_fd)
        raise RigError(f"--panel: the panel process could not start: {exc}") from None
    finally:
        os.close(write_fd)
    try:  # 44 bytes into an empty pipe: never blocks
        process.stdin.write(f"{key}\n".encode("ascii"))
        process.stdin.close()
    except OSError:
        pass  # it died at once: said below, from its exit status
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
        child.url, _, remote = text.strip().partition(" ")
        child.remote_url = remote or None
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
