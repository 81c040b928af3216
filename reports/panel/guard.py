"""Who may talk to the panel: the holder of the run's key, from the panel's own page.

The page can answer the operator's safety questions ("ready": the table pulls; "done" on
"press the red e-stop"), so a request must prove three things before it reaches the app:

* **The key.** Every page, data and answer URL lives under `/p/<key>/`, a per-run secret
  (`secrets.token_urlsafe(32)`, 256 bits) made by the process that starts the panel and
  shown only in the URL the terminal prints. It is never written to the run directory,
  the record or a log, so neither the page nor another page can read it back. The page's
  own requests are relative (`events`, `state`, `answer`, `report/…`), so they carry it
  without any script handling it, and a reload keeps working. No cookie: cookies are
  shared by every port of 127.0.0.1, so another local web page would be "same-site".
* **The Host.** Only the names the panel listens under (127.0.0.1, localhost, [::1], the
  --host given, this machine's name on a wildcard bind, or the very address the client
  connected to) — a DNS-rebinding page arrives with its own name and gets 421.
* **The Origin.** A POST must come from the panel's own origin (a browser always says
  where from); a GET that names a foreign origin, or that a browser marks as a cross-site
  subresource load (Sec-Fetch-Site), is refused too. 403 either way.

/static (the page's script, style and uPlot) is open: it reveals nothing about a run.
Every response forbids framing and referrers, so the key cannot leave in a Referer header
and a foreign page cannot frame the panel under the user's clicks.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
import socket
from collections.abc import Iterable

PREFIX = "/p/"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
SECURITY_HEADERS = [
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
]


def new_token() -> str:
    """The run's key: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def valid_token(token: str) -> bool:
    return isinstance(token, str) and TOKEN_RE.match(token) is not None


def host_name(host: str) -> str:
    """`host` as it appears in a Host header: lower case, an IPv6 literal in brackets."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        return name
    try:
        if ipaddress.ip_address(name).version == 6:
            return f"[{name}]"
    except ValueError:
        pass
    return name


def is_wildcard(host: str) -> bool:
    name = host.strip().strip("[]")
    if name == "":
        return True
    try:
        return ipaddress.ip_address(name).is_unspecified
    except ValueError:
        return False


class Guard:
    """The key and the names one panel answers to, and the checks a request must pass."""

    def __init__(self, token: str, port: int, names: Iterable[str] = ()) -> None:
        if not valid_token(token):
            raise ValueError("the panel's key must be 32 to 128 URL-safe characters")
        self.token = token
        self.port = int(port)
        self.names = {host_name(n) for n in (*LOOPBACK_NAMES, *names) if n}

    @classmethod
    def for_bind(cls, host: str, port: int, token: str) -> "Guard":
        """The names a panel listening on `host` is reached under: the loopback ones, the
        address given, and on a wildcard bind this machine's name (its addresses are
        accepted per connection: the one the client connected to)."""
        names = [] if is_wildcard(host) else [host]
        if is_wildcard(host):
            names += [socket.gethostname(), socket.getfqdn()]
        return cls(token, port, names)

    def base_path(self) -> str:
        return f"{PREFIX}{self.token}/"

    # ------------------------------------------------------------ the checks
    def host_ok(self, host_header: str | None, server) -> bool:
        """The Host header names this panel: one of its names, or the literal address the
        connection was made to, with the panel's port (80 may be left out)."""
        if not host_header:
            return False
        host = host_header.strip().lower()
        match = re.fullmatch(r"(\[[0-9a-f:.%a-z]+\]|[^:\[\]]+)(?::(\d{1,5}))?", host)
        if match is None:
            return False
        name, port = match.group(1), int(match.group(2) or 80)
        if port != self.port:
            return False
        if name in self.names:
            return True
        local = server[0] if server else None
        if isinstance(local, str):
            local = local.split("%", 1)[0]
            if local.startswith("::ffff:") and "." in local:
                local = local[len("::ffff:"):]
            try:
                return host_name(local) == name and not ipaddress.ip_address(local).is_unspecified
            except ValueError:
                return False
        return False

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode("ascii"))


def _split_key(path: str) -> tuple[str, str] | None:
    """("key", "/rest") for a path under PREFIX, else None."""
    if not path.startswith(PREFIX):
        return None
    key, slash, rest = path[len(PREFIX):].partition("/")
    return key, slash + rest


class GuardMiddleware:
    """Pure ASGI (no buffering), so the event stream passes through untouched."""

    def __init__(self, app, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            status, text = refusal
            await _reply(send_secured, status, text)
            return
        await self.app(scope, receive, send_secured)

    def refusal(self, scope) -> tuple[int, str] | None:
        """(status, one sentence) for a request that must not reach the app, else None."""
        guard = self.guard
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host")
        if not guard.host_ok(host, scope.get("server")):
            return 421, (f"This panel does not answer to the host {host or '(none)'!r}: open it at the URL the "
                         "terminal printed (a page under another name is refused: DNS rebinding).")
        path = scope.get("path", "")
        method = scope.get("method", "GET").upper()
        if path == "/static" or path.startswith("/static/"):
            return None
        split = _split_key(path)
        if split is None:
            return 401, ("This panel needs its key: open the URL the terminal printed "
                         "(http://HOST:PORT/p/KEY/; a new key for every panel).")
        key, _rest = split
        if not guard.token_ok(key):
            return 403, "Wrong key for this panel: open the URL the terminal printed (a new key for every panel)."
        own = f"http://{host.strip().lower()}"
        origin = headers.get("origin")
        if method not in ("GET", "HEAD"):
            if origin is None or origin.strip().lower() != own:
                return 403, (f"Refused: a {method} must come from the panel's own page ({own}), "
                             f"not from {origin or 'a sender that does not say (no Origin header)'}.")
        elif origin is not None and origin.strip().lower() != own:
            return 403, f"Refused: this panel's data is for its own page ({own}), not for {origin}."
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none") and headers.get("sec-fetch-mode") != "navigate":
            return 403, f"Refused: a {site} request for this panel's data (only its own page may fetch it)."
        return None


async def _reply(send, status: int, text: str) -> None:
    body = json.dumps({"ok": False, "error": text}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
