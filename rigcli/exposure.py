"""Whether a listening address reaches beyond this machine, and the one line that says so.

The panel can answer the operator's safety questions and the emulator can command a
table; on the loopback only the person at this machine reaches them. Any other address
is a decision someone must make explicitly (a flag) and see confirmed (a warning on
stderr), because nothing on a bench network stops a colleague's laptop, or a page open in
it, from reaching the port.
"""

from __future__ import annotations

import ipaddress
import socket

from drivers.errors import RigError

LOOPBACK = "loopback"
ALL = "all"  #: the wildcard address: every interface
NETWORK = "network"
UNKNOWN = "unknown"  #: does not resolve; binding it fails with its own line


def reach(host: str) -> str:
    """LOOPBACK when every address `host` names is a loopback one, ALL for a wildcard, else
    NETWORK (UNKNOWN when it does not resolve)."""
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "":
        return ALL
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None:
        return ALL if ip.is_unspecified else LOOPBACK if ip.is_loopback else NETWORK
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return UNKNOWN
    kinds = {reach(str(info[4][0]).split("%", 1)[0]) for info in infos}
    if kinds == {LOOPBACK}:
        return LOOPBACK
    return ALL if ALL in kinds else NETWORK


def where(kind: str) -> str:
    return "every interface of this machine" if kind == ALL else "a network address"


def check_listen(host: str, allowed: bool, *, option: str, allow_option: str, what: str, risk: str) -> str | None:
    """None for a loopback (or unresolvable) address; the warning line to print when the
    address reaches the network and `allowed`; otherwise RigError, one line (exit 2)."""
    kind = reach(host)
    if kind in (LOOPBACK, UNKNOWN):
        return None
    if not allowed:
        raise RigError(f"{option} {host}: {what} would listen on {where(kind)}, where {risk}; add {allow_option} "
                       "to mean it, on a trusted bench network only (default 127.0.0.1: this machine only)")
    return f"warning: {what} listens on {host} ({where(kind)}): {risk}"


def panel_listen(host: str, allowed: bool, *, option: str, allow_option: str) -> str | None:
    return check_listen(host, allowed, option=option, allow_option=allow_option, what="the panel",
                        risk="anyone who gets its URL (sent in clear: plain HTTP) can answer the operator's safety "
                             "questions")


def emulator_listen(host: str, allowed: bool, *, option: str = "--host",
                    allow_option: str = "--allow-remote") -> str | None:
    return check_listen(host, allowed, option=option, allow_option=allow_option, what="the emulated table",
                        risk="anyone who can reach it can command its controller and stimulus module (Modbus TCP "
                             "has no authentication): it is a table")
