"""Serving the panel: the listening socket first, then uvicorn on it.

The socket is bound before anything else starts, so a port in use is one clear line
before any server machinery runs, and port 0 gives the real port for the printed URL.
The URL is announced only once uvicorn serves (its startup, lifespan included, is done),
so whoever waits for it can open the page at once. It carries the run's key
(reports/panel/guard.py), and it is one that works: a wildcard bind (0.0.0.0, ::) is
announced on the loopback for this machine, and under this machine's name for the others.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import webbrowser

import uvicorn

from reports.panel.app import create_app
from reports.panel.guard import Guard, is_wildcard
from reports.panel.runs import RunSet


class PortInUse(OSError):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} on {host} is in use")
        self.host, self.port = host, port


class CannotBind(OSError):
    pass


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise CannotBind(f"{host}: not an address this machine can listen on ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not SO_REUSEPORT: a listener in use still fails
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise CannotBind(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    sock.set_inheritable(False)
    return sock


def _authority(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{shown}:{port}"


def url_of(sock: socket.socket, host: str, token: str) -> str:
    """The page's URL for this machine: on a wildcard bind, the loopback of the socket's family."""
    port = sock.getsockname()[1]
    if is_wildcard(host):
        host = "::1" if sock.family == socket.AF_INET6 else "127.0.0.1"
    return f"http://{_authority(host, port)}/p/{token}/"


def remote_url_of(sock: socket.socket, host: str, token: str) -> str | None:
    """On a wildcard bind, the URL for the other machines: under this machine's name."""
    if not is_wildcard(host):
        return None
    return f"http://{_authority(socket.gethostname(), sock.getsockname()[1])}/p/{token}/"


def guard_for(sock: socket.socket, host: str, token: str) -> Guard:
    return Guard.for_bind(host, sock.getsockname()[1], token)


class PanelServer(uvicorn.Server):
    """uvicorn, telling `on_started` once it serves, and ending the pages' event streams
    first when it stops (an open stream would otherwise hold the graceful shutdown)."""

    def __init__(self, config: uvicorn.Config, on_started=None) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit and self.on_started is not None:
            self.on_started()

    async def shutdown(self, sockets=None) -> None:
        hub = getattr(getattr(self.config.app, "state", None), "hub", None)
        if hub is not None:
            hub.close()
        await super().shutdown(sockets=sockets)


def make_server(runs: RunSet, guard: Guard, on_started=None, **app_options) -> PanelServer:
    app = create_app(runs, guard=guard, **app_options)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", http="h11", ws="none",
                            loop="asyncio", timeout_graceful_shutdown=2)
    return PanelServer(config, on_started)


def can_open_browser() -> bool:
    """Whether opening a browser would show a window: without a display, Python's webbrowser
    falls back to a text browser, which would take over the terminal of the run."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_browser(url: str) -> None:
    if not can_open_browser():
        return
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return
    if getattr(browser, "name", "") in ("www-browser", "links", "links2", "elinks", "lynx", "w3m"):
        return
    try:
        browser.open(url, new=2)
    except Exception:  # noqa: BLE001 — the URL is printed; a browser that fails to start is not the panel's fault
        pass
