"""Errors a test engineer can act on.

Each carries one line that names the device and the likely fix, so the CLI and the
pytest plugin can print it as is; library tracebacks stay behind `__cause__`.
"""

from __future__ import annotations

import time

#: the `rig` command's exit statuses (README, "Exit status"): one meaning each, in every command
EXIT_OK = 0
#: it ran, and the answer is no: a requirement failed, was inconclusive or did not run, a
#: device failed or stopped answering, a run does not verify
EXIT_FAILED = 1
#: bad input, nothing was done: an argument, a file or a key in it, a URL, an expired calibration
EXIT_USAGE = 2
#: reserved: the table could not be confirmed safe (set by the safe-state path, never for anything else)
EXIT_NOT_CONFIRMED_SAFE = 4
#: interrupted (Ctrl-C, SIGTERM, SIGHUP): 128 + SIGINT, as a shell reports it
EXIT_INTERRUPTED = 130


class RigError(Exception):
    """Base: str(error) is the one line shown to the user."""

    #: what the `rig` command exits with when this ends it: bad input unless a subclass
    #: says that something failed at run time
    exit_status = EXIT_USAGE


class ConfigError(RigError):
    """A rig file, specification or option is wrong."""


class DeviceError(RigError):
    """A device failed or stopped answering: the rig failed, the input may be right."""

    exit_status = EXIT_FAILED

    def __init__(self, device: str, message: str, fix: str | None = None) -> None:
        self.device = device
        self.fix = fix
        text = f"{device}: {message}"
        if fix:
            text += f" — {fix}"
        super().__init__(text)


class DeviceUnreachable(DeviceError):
    """Could not open the transport (host down, wrong port, no serial device)."""


class DeviceTimeout(DeviceError):
    """The device did not answer within the bounded timeout."""


class DeviceProtocolError(DeviceError):
    """The device answered, but not in the contract's language (garbage, wrong dialect)."""


class GaugeOverload(DeviceError):
    """The gauge reports overload (*21): force beyond 120 % of its capacity."""


class SafetyGuardError(RigError):
    """The framework itself refused a command that would exceed the rig's safety limit."""


#: what to check when a device that answered stops answering: set-up advice (unit id,
#: transport, dialect) would send the engineer the wrong way
MID_RUN_FIX = "check the cable or network and the device's power"


class ReplyClock:
    """When a link last had a good reply, and whether its device ever answered in this
    process (any link to the same address: the safety link's first request may come long
    after the test link's last reply). A device that never answered is set up wrong; one
    that answered and went silent stopped mid-run, and needs other advice."""

    _devices: dict[str, int] = {}  # address -> perf_counter_ns of the last good reply on any link

    def __init__(self, address: str) -> None:
        self.address = address
        self.last_ns: int | None = None

    def reset(self) -> None:
        """A new connection: nothing has answered on it yet (an earlier device at the same
        address, in this process, says nothing about this one)."""
        self.last_ns = None
        self._devices.pop(self.address, None)

    def tick(self) -> None:
        self.last_ns = now = time.perf_counter_ns()
        self._devices[self.address] = now

    def since_s(self) -> float | None:
        """Wall seconds since the last good reply (this link's, else the device's); None: never."""
        ref = self.last_ns or self._devices.get(self.address)
        return None if ref is None else (time.perf_counter_ns() - ref) / 1e9

    def error(self, kind: type[DeviceError], device: str, what: str, setup_fix: str) -> DeviceError:
        """The error for a request that got no reply: set-up advice while the device never
        answered, else that it stopped answering mid-run and how long ago it last did."""
        since = self.since_s()
        if since is None:
            return kind(device, what, setup_fix)
        return kind(device, f"stopped answering mid-run: {what}, {since:.1f} s after its last good reply", MID_RUN_FIX)


def exit_status(exc: BaseException) -> int:
    """The exit status for an error that ends a command: a ConfigError is bad input even
    when it is also something else (a database URL that is no URL is a HistoryError too)."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    return getattr(exc, "exit_status", EXIT_FAILED) if isinstance(exc, RigError) else EXIT_FAILED
