"""Errors a test engineer can act on.

Each carries one line that names the device and the likely fix, so the CLI and the
pytest plugin can print it as is; library tracebacks stay behind `__cause__`.
"""

from __future__ import annotations


class RigError(Exception):
    """Base: str(error) is the one line shown to the user."""


class ConfigError(RigError):
    """A rig file, specification or option is wrong."""


class DeviceError(RigError):
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
