"""The VISA link under both gauge drivers: open, terminations, bounded I/O, error mapping.

Every pyvisa / socket failure leaves this module as a DeviceError whose one line names
the resource and the likely fix; the library exception stays behind `__cause__`.
The hot path (`query`) is a bare write + read inside one try, nothing else.
"""

from __future__ import annotations

import socket

import pyvisa
from pyvisa import constants

from drivers import lease
from drivers.errors import ConfigError, DeviceError, DeviceProtocolError, DeviceTimeout, DeviceUnreachable, ReplyClock

SERIAL_BAUD = 115200
DEFAULT_TIMEOUT_MS = 2000

#: links holding each process-wide ResourceManager. Why: pyvisa hands every caller of a
#: backend the same ResourceManager, and closing it closes every resource opened through
#: it — a bench's gauge, inclinometer and obstacle gauge would all go dark when the first
#: of them closed. The last link to let go closes it.
_RM_USERS: dict[int, int] = {}


class VisaLink:
    """One open VISA message-based resource with explicit terminations.

    `hint` is the dialect's one-line description of its terminations, appended to
    timeout messages: a silent device is most often a termination or dialect mismatch.
    """

    def __init__(
        self,
        resource: str,
        *,
        read_termination: str,
        write_termination: str,
        hint: str,
        backend: str = "@py",
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        resource_manager: pyvisa.ResourceManager | None = None,
    ) -> None:
        self.resource = resource
        self.hint = hint
        self.timeout_ms = int(timeout_ms)
        #: a serial line (ASRL) rather than a socket: no connection, so state outlives us
        self.serial = resource.upper().startswith("ASRL")
        self.replies = ReplyClock(resource)
        self.replies.reset()
        self._own_rm = resource_manager is None
        try:
            self.rm = resource_manager or pyvisa.ResourceManager(backend)
        except Exception as exc:  # missing backend, bad sim file path, ...
            raise ConfigError(f"{resource}: VISA backend {backend!r} is not usable ({exc})") from exc
        if self._own_rm:
            _RM_USERS[id(self.rm)] = _RM_USERS.get(id(self.rm), 0) + 1
        try:
            inst = self.rm.open_resource(resource, open_timeout=self.timeout_ms)
        except Exception as exc:
            self._close_rm()
            raise DeviceUnreachable(resource, f"cannot open ({_short(exc)})", self._where()) from exc
        self.inst = inst
        if not getattr(inst, "_session", None):  # VI_NULL: pyvisa-sim's "not found" does not raise
            self.close()
            raise DeviceUnreachable(resource, "no such resource", self._where())
        try:
            # SOCKET resources default to no termination and would hang: always set both
            inst.read_termination = read_termination
            inst.write_termination = write_termination
            inst.timeout = self.timeout_ms
            inst.encoding = "latin-1"  # garbage must reach the parser, not a UnicodeDecodeError
            if self.serial:
                inst.baud_rate = SERIAL_BAUD
                inst.data_bits = 8
                inst.parity = constants.Parity.none
                inst.stop_bits = constants.StopBits.one
            elif resource.upper().endswith("::SOCKET"):
                _no_delay(inst)
        except Exception as exc:
            self.close()
            raise DeviceUnreachable(resource, f"cannot configure the link ({_short(exc)})", self._where()) from exc

    # -- I/O -------------------------------------------------------------------------------
    def query(self, command: str) -> str:
        try:
            self.inst.write(command)
            reply = self.inst.read()
        except Exception as exc:
            raise self.error(exc, command) from exc
        self.replies.tick()
        lease.progress()
        return reply

    def write(self, command: str) -> None:
        try:
            self.inst.write(command)
        except Exception as exc:
            raise self.error(exc, command) from exc
        lease.progress()

    def read(self) -> str:
        try:
            reply = self.inst.read()
        except Exception as exc:
            raise self.error(exc, None) from exc
        self.replies.tick()
        lease.progress()
        return reply

    def set_timeout(self, timeout_ms: float) -> None:
        self.inst.timeout = timeout_ms

    def restore_timeout(self) -> None:
        self.inst.timeout = self.timeout_ms

    def drain(self, quiet_ms: float = 50.0, limit: int = 1_000_000) -> int:
        """Read and discard lines until the device is quiet for `quiet_ms`; returns the count."""
        self.inst.timeout = quiet_ms
        count = 0
        try:
            while count < limit:
                try:
                    self.inst.read()
                except pyvisa.VisaIOError as exc:
                    if exc.error_code == constants.StatusCode.error_timeout:
                        break
                    raise self.error(exc, None) from exc
                except OSError as exc:
                    raise self.error(exc, None) from exc
                count += 1
        finally:
            self.restore_timeout()
        return count

    # -- errors -----------------------------------------------------------------------------
    def error(self, exc: BaseException, command: str | None) -> DeviceError:
        """The DeviceError a failed I/O maps to (the caller raises it `from exc`)."""
        what = f"to {command!r}" if command is not None else ""
        if isinstance(exc, DeviceError):
            return exc
        if self.inst is None:
            return DeviceError(self.resource, "the gauge driver is closed", "open the gauge again")
        if isinstance(exc, pyvisa.VisaIOError):
            if exc.error_code == constants.StatusCode.error_timeout:
                seconds = self.inst.timeout / 1000.0 if self.inst.timeout else 0.0
                return self.replies.error(DeviceTimeout, self.resource,
                                          f"no reply {what} within {seconds:.1f} s".replace("  ", " "),
                                          f"check termination / dialect / cable ({self.hint})")
            return self.replies.error(DeviceUnreachable, self.resource, f"I/O failed {what} ({_short(exc)})",
                                      self._where())
        if isinstance(exc, (ConnectionError, OSError)):
            return self.replies.error(DeviceUnreachable, self.resource, f"connection failed ({_short(exc)})",
                                      self._where())
        return DeviceProtocolError(
            self.resource, f"unexpected failure {what} ({type(exc).__name__}: {_short(exc)})", self.hint
        )

    def _where(self) -> str:
        if self.serial:
            return "check the serial device path, its permissions and that nothing else holds it"
        return "check host and port, and that the gauge (or its emulator) is running"

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        inst = getattr(self, "inst", None)
        self.inst = None
        if inst is not None:
            try:
                inst.close()
            except Exception:
                pass
        self._close_rm()

    def _close_rm(self) -> None:
        rm = getattr(self, "rm", None)
        if not self._own_rm or rm is None:
            return
        self.rm = None
        users = _RM_USERS.get(id(rm), 1) - 1
        if users > 0:
            _RM_USERS[id(rm)] = users
            return
        _RM_USERS.pop(id(rm), None)
        try:
            rm.close()
        except Exception:
            pass


def _short(exc: BaseException) -> str:
    """One line of an exception's text."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _no_delay(inst) -> None:
    """TCP_NODELAY on a raw-socket resource (VISA's own default for VI_ATTR_TCPIP_NODELAY).

    Without it a command that gets no reply (`SAMP:RATE 1000`) followed at once by a
    query waits ~40 ms: Nagle holds the query until the first write is acknowledged,
    and the instrument, having nothing to send, delays that acknowledgement. pyvisa-py
    registers the attribute but wires its setter to one that refuses every attribute,
    so its session's socket is set directly when the attribute cannot be."""
    try:
        inst.set_visa_attribute(constants.VI_ATTR_TCPIP_NODELAY, constants.VI_TRUE)
        return
    except Exception:  # noqa: BLE001 — pyvisa-py: UnknownAttribute; other backends may differ
        pass
    session = getattr(getattr(inst, "visalib", None), "sessions", {}).get(getattr(inst, "session", None))
    sock = getattr(session, "interface", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
