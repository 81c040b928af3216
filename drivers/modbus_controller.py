"""The Modbus machinery every table controller of the TCM-1 family shares (pymodbus 3.16).

TCM-1 (traction) and FDC-1 (flexion-distraction) differ in their registers and in what
the registers mean, not in how they are spoken to: the same transport (TCP, or RTU at
19200 8E1 on a line shared with the heartbeat process), the same exceptions 02/03/04/0B
and LAST_REJECT after a refusal, the same identity block (PROTOCOL_VERSION, DEVICE_KIND
at input register 103, SERIAL) and the same ENABLE/START/STOP/ESTOP/RESET coils,
HEARTBEAT and WATCHDOG_MS. This module holds all of that once; a protocol's driver
subclasses `ModbusController`, names its register map in a few class attributes and
adds its typed status snapshot and setters. Why one base: a fix to the RTU line
sharing, the pipelined status snapshot or the error lines must reach every kind of
table, and copies drift.

Every refusal the device makes becomes a typed error naming the register and the
device's own LAST_REJECT reason, because "exception 04" alone tells a test engineer
nothing.
"""

from __future__ import annotations

import enum
import fcntl
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import ClassVar

import serial
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerSocket, FramerType
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.bit_message import ReadDiscreteInputsRequest
from pymodbus.pdu.register_message import ReadInputRegistersRequest

from drivers import lease, units
from drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
    ReplyClock,
    SafetyGuardError,
)
from drivers.kinds import controller_for_device
from drivers.links import ModbusLink
from drivers.tcm1 import IDENTITY_HEAD, PROTOCOL_VERSION, RTU_BAUDRATE, RTU_BYTESIZE, RTU_PARITY, RTU_STOPBITS, Coil, RejectReason

# pymodbus reports every lost frame on its own logger; the driver's errors already say
# what went wrong and what to do, so its chatter is opt-in (TRACTION_RIG_MODBUS_LOG=1).
if not os.environ.get("TRACTION_RIG_MODBUS_LOG"):
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

#: a controller whose connection could not be made or was lost before it ever answered
CONNECT_FIX = "check the host/port in the rig file and that the controller is powered and on the network"


class ModbusExceptionError(DeviceError):
    """The device answered with a Modbus exception."""

    def __init__(self, device: str, code: int, target: str, reason: RejectReason | None, fix: str | None = None,
                 fault: enum.IntEnum | None = None):
        self.code = code
        self.target = target
        self.reason = reason
        self.fault = fault
        text = f"exception {code:02X} ({_EXC_TEXT.get(code, 'unknown')}) on {target}"
        if reason is not None:
            text += f"; LAST_REJECT {int(reason)}: {reason.text}"
        if fault:  # which latch: the first trigger the controller kept
            text += f"; FAULT_CODE {int(fault)} ({fault.name.lower().replace('_', ' ')})"
        super().__init__(device, text, fix)


class IllegalAddress(ModbusExceptionError):
    """02: the address is not in the protocol's document."""


class IllegalValue(ModbusExceptionError):
    """03: value out of range; nothing was written."""


class CommandRefused(ModbusExceptionError):
    """04: the present state refuses the command; `reason` says why."""


class WrongUnitId(ModbusExceptionError):
    """0B: no device with that unit id behind this address."""


def refusal_of(command, *args, **kwargs) -> CommandRefused | IllegalValue | None:
    """The device's refusal of `command(*args, **kwargs)` (04 or 03), or None when it took
    it: an interlock suite judges the refusal itself, so a refusal is a value, not a failure."""
    try:
        command(*args, **kwargs)
    except (CommandRefused, IllegalValue) as exc:
        return exc
    return None


_EXC_TEXT = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "refused by device state",
    0x0B: "wrong unit id",
}
_EXC_CLASS = {0x02: IllegalAddress, 0x03: IllegalValue, 0x04: CommandRefused, 0x0B: WrongUnitId}


class Transport(enum.Enum):
    TCP = "tcp"
    RTU = "rtu"


#: After a failed RTU transaction the line is held this long (wall s) and then drained,
#: so a late reply cannot be taken for the answer to the other master's next request.
LINE_SETTLE_S = 0.05


class SharedLineClient(ModbusSerialClient):
    """An RTU client that opens its line without pyserial's lifetime lock.

    pymodbus opens a serial port `exclusive`: an flock held as long as the port is open,
    so no other process can open it. The test process and the heartbeat process both
    need the line, so each opens it shared and takes that same flock around every
    whole transaction instead (`ModbusController._exclusive`): one master on the wire
    at a time, and no frame of one interleaved with a frame of the other."""

    def connect(self) -> bool:
        if self.socket:
            return True
        p = self.comm_params
        try:
            self.socket = serial.serial_for_url(p.host, timeout=p.timeout_connect, write_timeout=p.timeout_connect,
                                                bytesize=p.bytesize, stopbits=p.stopbits, baudrate=p.baudrate,
                                                parity=p.parity, exclusive=False)
            self.socket.inter_byte_timeout = self.inter_byte_timeout
        except Exception:  # noqa: BLE001 — pyserial raises termios.error too; the caller explains
            self.close()
        return self.socket is not None


def _either(values) -> str:
    """'1, 2 or 3' / '4': how an error line lists the values it expected."""
    values = [str(v) for v in sorted(values)]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


class ModbusController:
    """A controller of the TCM-1 family over Modbus TCP or RTU.

    A protocol's driver sets the class attributes below from its register map and adds
    its own `status()` (decoding `_status_words()`), `identity()` (decoding
    `_identity_words()`) and typed setters. `safety_limit_n` is the rig's force guard,
    not the device's.
    """

    #: the protocol's name, as registered in drivers/kinds.py (TCM-1, FDC-1)
    protocol: ClassVar[str]
    #: what a link to it is called when the caller gives no name
    default_name: ClassVar[str]
    #: the DEVICE_KIND values this protocol's controllers answer
    device_kinds: ClassVar[frozenset[int]]
    #: the register map's enumerations (discrete inputs, holding registers, FAULT_CODE)
    DiscreteInput: ClassVar[type[enum.IntEnum]]
    Holding: ClassVar[type[enum.IntEnum]]
    FaultCode: ClassVar[type[enum.IntEnum]]
    #: input registers: (start, count) of the status and the identity reads, and where
    #: FAULT_CODE and LAST_REJECT are (read after a refusal)
    STATUS_INPUT_SPAN: ClassVar[tuple[int, int]]
    IDENTITY_INPUT_SPAN: ClassVar[tuple[int, int]]
    FAULT_CODE_REGISTER: ClassVar[int]
    LAST_REJECT_REGISTER: ClassVar[int]

    def __init__(
        self,
        *,
        transport: Transport | str = Transport.TCP,
        host: str = "127.0.0.1",
        port: int | str = 502,
        unit_id: int = 1,
        timeout_s: float = 1.0,
        safety_limit_n: float | None = None,
        name: str | None = None,
        baudrate: int = RTU_BAUDRATE,
        parity: str = RTU_PARITY,
        pipeline_status: bool = True,
    ) -> None:
        """`pipeline_status`: on Modbus TCP, send a status snapshot's two reads together when
        the device is found (at connect) to answer two requests sent in one segment."""
        self.transport = Transport(transport)
        self.unit_id = unit_id
        self.timeout_s = timeout_s
        self.safety_limit_n = safety_limit_n
        #: called with every status read (the panel's live trace taps the reads the suites
        #: make anyway, never reads of its own); must return at once and never raise
        self.on_status: Callable | None = None
        #: where this controller is and how it is spoken to (another link to it starts here)
        self.link = ModbusLink(self.transport.value, host, port, unit_id, timeout_s, baudrate, parity)
        self.address = self.link.address
        if self.transport is Transport.TCP:
            self._client = ModbusTcpClient(host, port=int(port), timeout=timeout_s, retries=0)
        else:
            self._client = SharedLineClient(
                str(port),
                framer=FramerType.RTU,
                baudrate=baudrate,
                bytesize=RTU_BYTESIZE,
                parity=parity,
                stopbits=RTU_STOPBITS,
                timeout=timeout_s,
                retries=0,
            )
        self.device = f"{name or self.default_name} ({self.address})"
        self.replies = ReplyClock(self.address)
        # one Modbus link, whichever thread uses it
        self._lock = threading.RLock()
        self._line_depth = 0  # nesting of _exclusive() (the flock is taken once)
        self._pipeline = pipeline_status and self.transport is Transport.TCP
        self.pipelined = False  # known after connect(): the device answers two requests at once
        self._framer = FramerSocket(DecodePDU(False))
        self._tid = 0

    @classmethod
    def on(cls, link: ModbusLink, *, name: str | None = None, safety_limit_n: float | None = None,
           pipeline_status: bool = True):
        """A controller at `link` (not yet connected): how the connect path opens one."""
        return cls(transport=link.transport, host=link.host, port=link.port, unit_id=link.unit_id,
                   timeout_s=link.timeout_s, baudrate=link.baudrate, parity=link.parity, name=name,
                   safety_limit_n=safety_limit_n, pipeline_status=pipeline_status)

    #: the heartbeat process's link when the rig routes it elsewhere (rig file:
    #: controller.heartbeat_link); None: the same address as this link
    heartbeat_link: ModbusLink | None = None

    def link_args(self) -> dict:
        """How to open another link to this controller, as JSON (the heartbeat process does)."""
        return (self.heartbeat_link or self.link).to_json()

    @property
    def setup_fix(self) -> str:
        """A controller that never answered: most likely set up wrong."""
        return f"check the unit id, transport (TCP vs RTU, 19200 8E1) and that it is a {self.protocol} controller"

    # ------------------------------------------------------------ connection
    def connect(self):
        self.replies.reset()
        if not self._client.connect():
            if self.transport is Transport.TCP:
                raise DeviceUnreachable(self.device, "cannot connect", CONNECT_FIX)
            raise DeviceUnreachable(self.device, *self._serial_refusal())
        if self._pipeline:
            self.pipelined = self._answers_two_at_once()
        return self

    def _status_requests(self) -> tuple[ReadDiscreteInputsRequest, ReadInputRegistersRequest]:
        start, count = self.STATUS_INPUT_SPAN
        tids = [(self._tid + i) % 65000 + 1 for i in (1, 2)]
        self._tid = tids[1]
        return (ReadDiscreteInputsRequest(dev_id=self.unit_id, transaction_id=tids[0], address=0,
                                          count=len(self.DiscreteInput)),
                ReadInputRegistersRequest(dev_id=self.unit_id, transaction_id=tids[1], address=start, count=count))

    def _answers_two_at_once(self) -> bool:
        """Send a snapshot's two reads in one segment, on a connection of its own: do both
        answers come? Not every Modbus TCP server reads past the first frame of a segment
        (pymodbus' own keeps the second until more bytes arrive), so this is asked, once,
        before the link relies on it; a server that does not gets one read at a time."""
        p = self._client.comm_params
        try:
            with socket.create_connection((p.host, p.port), timeout=self.timeout_s) as probe:
                probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                replies = self._exchange(probe, self._status_requests(), self.timeout_s, then_s=0.05)
        except (OSError, DeviceError):
            return False
        return replies is not None and not any(r.isError() for r in replies)

    def _exchange(self, sock: socket.socket, requests, timeout_s: float, then_s: float | None = None):
        """Both requests in one write, then their answers (by transaction id) or None when
        they did not all come within the timeout. `then_s`: once the first answer is in,
        the others get only max(then_s, 3 x its round trip) more (a probe need not wait
        the whole timeout for an answer that is not coming)."""
        sent = time.perf_counter_ns()
        sock.sendall(b"".join(self._framer.buildFrame(r) for r in requests))
        wanted = {r.transaction_id: i for i, r in enumerate(requests)}
        out: list = [None] * len(requests)
        data = b""
        deadline = sent + int(timeout_s * 1e9)
        while wanted:
            if then_s is not None and len(wanted) < len(requests):
                first = time.perf_counter_ns() - sent
                deadline = min(deadline, sent + first + max(int(then_s * 1e9), 3 * first))
                then_s = None
            left = (deadline - time.perf_counter_ns()) / 1e9
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return None
            chunk = sock.recv(4096)
            if not chunk:
                raise OSError("connection closed by the device")
            data += chunk
            while data:
                used, pdu = self._framer.handleFrame(data, 0, 0)
                if pdu is None:
                    break
                data = data[used:]
                if pdu.transaction_id in wanted:
                    out[wanted.pop(pdu.transaction_id)] = pdu
        return out

    def _serial_refusal(self) -> tuple[str, str]:
        """Why the serial line did not open, and the fix: pymodbus only logs the reason,
        so the open is repeated here to get it (a refused parity reads very differently
        from a missing device)."""
        p = self._client.comm_params
        settings = f"{p.baudrate} {p.bytesize}{p.parity}{p.stopbits}"
        fix = "check the serial port name, permissions and cabling"
        try:
            serial.Serial(p.host, baudrate=p.baudrate, bytesize=p.bytesize, parity=p.parity, stopbits=p.stopbits).close()
        except Exception as exc:  # noqa: BLE001 — pyserial also raises termios.error
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if p.parity != "N" and "/pts/" in str(p.host):
                fix = "a pseudo-terminal carries no parity bit and may refuse PARENB: use parity N over a pty"
            return f"cannot open the serial line at {settings} ({reason})", fix
        return f"cannot open the serial line at {settings}", fix

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ raw access
    @contextmanager
    def _exclusive(self):
        """This link for one exchange: the thread lock, and on RTU the line itself (the
        flock every master on this PC takes for a whole transaction)."""
        with self._lock:
            line = None
            if self.transport is Transport.RTU and self._line_depth == 0 and self._client.connect():
                line = self._client.socket
                fcntl.flock(line.fd, fcntl.LOCK_EX)
            self._line_depth += 1
            try:
                yield
                if self._line_depth == 1:
                    lease.progress()  # a completed exchange: the runner is making progress
            except (DeviceTimeout, DeviceProtocolError):
                if line is not None:  # let a late reply arrive, then drop it, before the other master goes
                    time.sleep(LINE_SETTLE_S)
                    line.reset_input_buffer()
                raise
            finally:
                self._line_depth -= 1
                if line is not None and line.fd is not None:
                    fcntl.flock(line.fd, fcntl.LOCK_UN)

    def _call(self, target: str, method, *args, **kwargs):
        with self._exclusive():
            return self._call_locked(target, method, *args, **kwargs)

    def _call_locked(self, target: str, method, *args, **kwargs):
        try:
            response = method(*args, device_id=self.unit_id, **kwargs)
        except (ModbusException, OSError) as exc:
            raise self._silent(target, exc) from exc
        self.replies.tick()
        if response.isError():
            code = getattr(response, "exception_code", None)
            if code is None:
                raise DeviceProtocolError(self.device, f"unexpected reply to {target}: {response}")
            reason = fault = None
            if code in (0x03, 0x04):
                reason = self._read_reason(self.LAST_REJECT_REGISTER, RejectReason)
            if reason is RejectReason.LATCHED:
                fault = self._read_reason(self.FAULT_CODE_REGISTER, self.FaultCode)
            fix = None
            if code == 0x0B:
                fix = f"the device does not answer unit id {self.unit_id}: set the rig file's unit id"
            raise _EXC_CLASS.get(code, ModbusExceptionError)(self.device, code, target, reason, fix, fault)
        return response

    def _silent(self, target: str, exc: BaseException | None) -> DeviceError:
        """The error for a request that got no reply: a lost connection or a timeout, with
        set-up advice only while this controller has never answered (see ReplyClock)."""
        if isinstance(exc, (ConnectionException, OSError)):
            why = f" ({str(exc).splitlines()[0]})" if isinstance(exc, OSError) and str(exc) else ""
            return self.replies.error(DeviceUnreachable, self.device, f"connection lost or refused during {target}{why}",
                                      CONNECT_FIX)
        return self.replies.error(DeviceTimeout, self.device, f"no valid reply to {target} within {self.timeout_s:g} s",
                                  self.setup_fix)

    def _read_reason(self, reg: int, kind):
        """Why a command was refused, read after the refusal; None when that read fails too."""
        try:
            raw = self._client.read_input_registers(int(reg), count=1, device_id=self.unit_id)
            return kind(raw.registers[0]) if not raw.isError() else None
        except (ModbusException, ValueError, OSError):
            return None

    def read_coils(self) -> dict[Coil, bool]:
        bits = self._call(f"coils 0..{len(Coil) - 1}", self._client.read_coils, 0, count=len(Coil)).bits
        return {c: bool(bits[c]) for c in Coil}

    def read_holding(self, reg, count: int = 1) -> list[int]:
        return self._call(f"holding {reg.name}", self._client.read_holding_registers, int(reg), count=count).registers

    def write_holding(self, reg, value: int) -> None:
        self._call(f"{reg.name} (holding {int(reg)}) := {value}", self._client.write_register, int(reg), value)

    def write_holdings(self, start, values: list[int]) -> None:
        """FC 16: all or nothing, checked by the device in address order."""
        self._call(f"holding {int(start)}..{int(start) + len(values) - 1}", self._client.write_registers, int(start), values)

    def write_coil(self, coil: Coil, value: bool = True) -> int:
        """Write a coil; returns perf_counter_ns at the acknowledgement."""
        with self._exclusive():
            self._call_locked(f"{coil.name} (coil {int(coil)}) := {int(value)}", self._client.write_coil, int(coil), value)
            return time.perf_counter_ns()

    # ------------------------------------------------------------ status
    def _status_words(self) -> tuple[list[bool], list[int], int, int]:
        """Discrete inputs and status registers, with the host instants that bracket them
        (sent_ns, host_ns); on a device that takes both reads at once (`pipelined`), both
        in flight together: one round trip, sampled back to back."""
        start, count = self.STATUS_INPUT_SPAN
        with self._exclusive():
            sent_ns = time.perf_counter_ns()
            replies = self._status_pipelined() if self.pipelined else None
            if replies is not None:
                di, ir = replies[0].bits, replies[1].registers
            else:
                di = self._call_locked(f"discrete inputs 0..{len(self.DiscreteInput) - 1}",
                                       self._client.read_discrete_inputs, 0, count=len(self.DiscreteInput)).bits
                ir = self._call_locked(f"input registers {start}..{start + count - 1}",
                                       self._client.read_input_registers, start, count=count).registers
            host_ns = time.perf_counter_ns()
        return di, ir, sent_ns, host_ns

    def _enumerated(self, **fields) -> dict:
        """Status registers as their enumerations, or one line saying which is out of them."""
        try:
            return {name: kind(value) for name, (kind, value) in fields.items()}
        except ValueError as exc:
            raise DeviceProtocolError(self.device, f"status register out of the {self.protocol} enumerations: "
                                      f"{exc}") from exc

    def _publish(self, status):
        if self.on_status is not None:
            self.on_status(status)
        return status

    def _status_pipelined(self):
        """Both status reads on this link at once; None (then read one at a time, so a
        refusal is explained as usual) when the device answered either with an exception."""
        sock = self._client.socket
        if sock is None and self._client.connect():
            sock = self._client.socket
        if sock is None:  # the connection was lost and could not be made again
            raise self._silent("the status reads", ConnectionException("cannot reconnect"))
        try:
            replies = self._exchange(sock, self._status_requests(), self.timeout_s)
        except OSError as exc:
            self._client.close()
            raise self._silent("the status reads", exc) from exc
        if replies is None:
            self._client.close()  # a late answer must not be taken for the next request's
            raise self._silent("the status reads", None)
        self.replies.tick()
        return None if any(r.isError() for r in replies) else replies

    def _identity_words(self) -> list[int]:
        """The identity block (PROTOCOL_VERSION, FIRMWARE_VERSION, RATED_FORCE, DEVICE_KIND,
        SERIAL, then the protocol's own), checked to be this protocol's: a device of another
        registered protocol is one line naming the table kind to set instead."""
        start, count = self.IDENTITY_INPUT_SPAN
        try:
            regs = self._call(f"identity (input {start}..{start + count - 1})", self._client.read_input_registers,
                              start, count=count).registers
        except IllegalAddress:
            # a protocol with a shorter identity block has no such span: the head every
            # protocol shares says which controller this is, in the one line below
            regs = self._call(f"identity (input {start}..{start + IDENTITY_HEAD - 1})",
                              self._client.read_input_registers, start, count=IDENTITY_HEAD).registers
            self._check_identity(regs)
            raise
        return self._check_identity(regs)

    def _check_identity(self, regs: list[int]) -> list[int]:
        if regs[0] != PROTOCOL_VERSION:
            raise DeviceProtocolError(
                self.device,
                f"PROTOCOL_VERSION is 0x{regs[0]:04X}, expected 0x{PROTOCOL_VERSION:04X}",
                f"this is not a {self.protocol} 1.0 controller: check the rig file's controller address",
            )
        kind = regs[3]
        if kind not in self.device_kinds:
            other = controller_for_device(kind)
            if other is not None:
                article = "an" if other.protocol[0] in "AEFHILMNORSX" else "a"  # as the letter is said
                raise DeviceProtocolError(self.device, f"DEVICE_KIND {kind} is {article} {other.protocol} controller, "
                                          f"not {self.protocol}", f"set table.kind to one of {', '.join(other.tables)}")
            raise DeviceProtocolError(self.device, f"DEVICE_KIND {kind} is not {_either(self.device_kinds)}")
        return regs

    def residual_force(self) -> float:
        return units.dn_to_n(self.read_holding(self.Holding.RESIDUAL_FORCE)[0])

    def settings(self) -> dict:
        regs = self.read_holding(self.Holding(0), count=len(self.Holding))
        return {h: regs[h] for h in self.Holding}

    # ------------------------------------------------------------ commands
    def enable(self) -> int:
        return self.write_coil(Coil.ENABLE, True)

    def disable(self) -> int:
        return self.write_coil(Coil.ENABLE, False)

    def start(self) -> int:
        lease.motion()  # the heartbeat's lease is short again before the table can move
        return self.write_coil(Coil.START)

    def stop(self) -> int:
        return self.write_coil(Coil.STOP)

    def emergency_stop(self) -> int:
        return self.write_coil(Coil.ESTOP)

    def reset(self) -> int:
        return self.write_coil(Coil.RESET)

    def heartbeat(self) -> int:
        """Restart the device's watchdog; returns perf_counter_ns at the acknowledgement."""
        with self._exclusive():
            self._heartbeat_count = (getattr(self, "_heartbeat_count", 0) + 1) & 0xFFFF
            self.write_holding(self.Holding.HEARTBEAT, self._heartbeat_count)
            return time.perf_counter_ns()

    def set_watchdog(self, seconds: float) -> None:
        """0 disables it; the period is in the table's clock (K x wall on an emulator)."""
        self.write_holding(self.Holding.WATCHDOG_MS, units.s_to_ms(seconds))

    def _guard(self, newtons: float, what: str, testing_interlock: bool) -> None:
        if newtons < 0:
            raise ValueError(f"{what} must be >= 0 N, got {newtons} N")
        if self.safety_limit_n is not None and newtons > self.safety_limit_n and not testing_interlock:
            raise SafetyGuardError(
                f"{self.device}: refusing to command {what} {newtons:.1f} N above the rig's safety limit "
                f"{self.safety_limit_n:.1f} N — pass testing_interlock=True only in an interlock test"
            )

    # ------------------------------------------------------------ safe state
    def make_safe(self) -> list[str]:
        """Emergency stop and de-energise, tolerating a dead link; returns what failed."""
        problems = []
        for step, action in (("ESTOP", self.emergency_stop), ("ENABLE 0", self.disable)):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 — every exit path must try both
                problems.append(f"{step}: {exc}")
        return problems


__all__ = [
    "CONNECT_FIX",
    "CommandRefused",
    "IllegalAddress",
    "IllegalValue",
    "LINE_SETTLE_S",
    "ModbusController",
    "ModbusExceptionError",
    "SharedLineClient",
    "Transport",
    "WrongUnitId",
    "refusal_of",
]
