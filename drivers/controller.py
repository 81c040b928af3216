"""TCM-1 traction controller driver (pymodbus 3.16, Modbus TCP or RTU).

Typed operations in newtons and seconds; the conversion to register units happens
here and in drivers/units.py only. Every refusal the device makes becomes a typed
error naming the register and the device's own LAST_REJECT reason, because "exception
04" alone tells a test engineer nothing.
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
from dataclasses import dataclass

import serial
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerSocket, FramerType
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.bit_message import ReadDiscreteInputsRequest
from pymodbus.pdu.register_message import ReadInputRegistersRequest

from drivers import lease, units
from drivers.kinds import controller_for_device, register_controller
from drivers.links import ModbusLink
from drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
    ReplyClock,
    SafetyGuardError,
)
from drivers.tcm1 import (
    IDENTITY_INPUT_SPAN,
    PROTOCOL_VERSION,
    RTU_BAUDRATE,
    RTU_BYTESIZE,
    RTU_PARITY,
    RTU_STOPBITS,
    SERIAL_REGISTERS,
    STATUS_INPUT_SPAN,
    Coil,
    DeviceKind,
    DiscreteInput,
    FaultCode,
    Holding,
    InputReg,
    Phase,
    RejectReason,
    decode_serial,
)


# pymodbus reports every lost frame on its own logger; the driver's errors already say
# what went wrong and what to do, so its chatter is opt-in (TRACTION_RIG_MODBUS_LOG=1).
if not os.environ.get("TRACTION_RIG_MODBUS_LOG"):
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


#: a controller that never answered: most likely set up wrong
SETUP_FIX = "check the unit id, transport (TCP vs RTU, 19200 8E1) and that it is a TCM-1 controller"
#: a controller whose connection could not be made or was lost before it ever answered
CONNECT_FIX = "check the host/port in the rig file and that the controller is powered and on the network"


class ModbusExceptionError(DeviceError):
    """The device answered with a Modbus exception."""

    def __init__(self, device: str, code: int, target: str, reason: RejectReason | None, fix: str | None = None,
                 fault: FaultCode | None = None):
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
    """02: the address is not in the TCM-1 document."""


class IllegalValue(ModbusExceptionError):
    """03: value out of range; nothing was written."""


class CommandRefused(ModbusExceptionError):
    """04: the present state refuses the command; `reason` says why."""


class WrongUnitId(ModbusExceptionError):
    """0B: no device with that unit id behind this address."""


_EXC_TEXT = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "refused by device state",
    0x0B: "wrong unit id",
}
_EXC_CLASS = {0x02: IllegalAddress, 0x03: IllegalValue, 0x04: CommandRefused, 0x0B: WrongUnitId}


@dataclass(frozen=True)
class ControllerStatus:
    """One consistent look at the controller: all discrete inputs + status registers."""

    ready: bool
    enabled: bool
    running: bool
    at_target: bool
    estop_latched: bool
    overforce_tripped: bool
    patient_switch_pressed: bool
    patient_switch_connected: bool
    watchdog_tripped: bool
    fault: bool
    force_n: float
    phase: Phase
    fault_code: FaultCode
    uptime_s: float
    position_m: float
    last_reject: RejectReason
    host_ns: int  # perf_counter_ns when the reply arrived
    #: perf_counter_ns just before the request went out: the device sampled what this
    #: snapshot shows somewhere in [sent_ns, host_ns], not at host_ns (a loaded host can
    #: take its time to read a reply)
    sent_ns: int = 0

    @property
    def latched(self) -> bool:
        return self.estop_latched or self.overforce_tripped or self.watchdog_tripped or self.fault


@dataclass(frozen=True)
class ControllerIdentity:
    protocol_version: int
    firmware_version: int
    rated_force_n: float
    kind: DeviceKind
    serial: str


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
    whole transaction instead (`TractionController._exclusive`): one master on the wire
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


@register_controller("TCM-1", tables=("lumbar", "cervical"), device_kinds=tuple(DeviceKind), stimulus="SIO-1")
class TractionController:
    """A TCM-1 controller. `safety_limit_n` is the rig's guard, not the device's."""

    def __init__(
        self,
        *,
        transport: Transport | str = Transport.TCP,
        host: str = "127.0.0.1",
        port: int | str = 502,
        unit_id: int = 1,
        timeout_s: float = 1.0,
        safety_limit_n: float | None = None,
        name: str = "traction controller",
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
        #: called with every status read (the panel's live force trace taps the reads the
        #: suites make anyway, never reads of its own); must return at once and never raise
        self.on_status: Callable[[ControllerStatus], None] | None = None
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
        self.device = f"{name} ({self.address})"
        self.replies = ReplyClock(self.address)
        # one Modbus link, whichever thread uses it
        self._lock = threading.RLock()
        self._line_depth = 0  # nesting of _exclusive() (the flock is taken once)
        self._pipeline = pipeline_status and self.transport is Transport.TCP
        self.pipelined = False  # known after connect(): the device answers two requests at once
        self._framer = FramerSocket(DecodePDU(False))
        self._tid = 0

    @classmethod
    def on(cls, link: ModbusLink, *, name: str = "traction controller", safety_limit_n: float | None = None,
           pipeline_status: bool = True) -> "TractionController":
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

    # ------------------------------------------------------------ connection
    def connect(self) -> "TractionController":
        self.replies.reset()
        if not self._client.connect():
            if self.transport is Transport.TCP:
                raise DeviceUnreachable(self.device, "cannot connect", CONNECT_FIX)
            raise DeviceUnreachable(self.device, *self._serial_refusal())
        if self._pipeline:
            self.pipelined = self._answers_two_at_once()
        return self

    def _status_requests(self) -> tuple[ReadDiscreteInputsRequest, ReadInputRegistersRequest]:
        start, count = STATUS_INPUT_SPAN
        tids = [(self._tid + i) % 65000 + 1 for i in (1, 2)]
        self._tid = tids[1]
        return (ReadDiscreteInputsRequest(dev_id=self.unit_id, transaction_id=tids[0], address=0, count=len(DiscreteInput)),
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
        import serial

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

    def __enter__(self) -> "TractionController":
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
                reason = self._read_reason(InputReg.LAST_REJECT, RejectReason)
            if reason is RejectReason.LATCHED:
                fault = self._read_reason(InputReg.FAULT_CODE, FaultCode)
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
                                  SETUP_FIX)

    def _read_reason(self, reg: InputReg, kind):
        """Why a command was refused, read after the refusal; None when that read fails too."""
        try:
            raw = self._client.read_input_registers(reg, count=1, device_id=self.unit_id)
            return kind(raw.registers[0]) if not raw.isError() else None
        except (ModbusException, ValueError, OSError):
            return None

    def read_coils(self) -> dict[Coil, bool]:
        bits = self._call("coils 0..4", self._client.read_coils, 0, count=len(Coil)).bits
        return {c: bool(bits[c]) for c in Coil}

    def read_holding(self, reg: Holding, count: int = 1) -> list[int]:
        return self._call(f"holding {reg.name}", self._client.read_holding_registers, int(reg), count=count).registers

    def write_holding(self, reg: Holding, value: int) -> None:
        self._call(f"{reg.name} (holding {int(reg)}) := {value}", self._client.write_register, int(reg), value)

    def write_holdings(self, start: Holding, values: list[int]) -> None:
        """FC 16: all or nothing, checked by the device in address order."""
        self._call(f"holding {int(start)}..{int(start) + len(values) - 1}", self._client.write_registers, int(start), values)

    def write_coil(self, coil: Coil, value: bool = True) -> int:
        """Write a coil; returns perf_counter_ns at the acknowledgement."""
        with self._exclusive():
            self._call_locked(f"{coil.name} (coil {int(coil)}) := {int(value)}", self._client.write_coil, int(coil), value)
            return time.perf_counter_ns()

    # ------------------------------------------------------------ status
    def status(self) -> ControllerStatus:
        """Discrete inputs and status registers; on a device that takes both reads at once
        (`pipelined`), both in flight together: one round trip, sampled back to back."""
        start, count = STATUS_INPUT_SPAN
        with self._exclusive():
            sent_ns = time.perf_counter_ns()
            replies = self._status_pipelined() if self.pipelined else None
            if replies is not None:
                di, ir = replies[0].bits, replies[1].registers
            else:
                di = self._call_locked("discrete inputs 0..9", self._client.read_discrete_inputs, 0, count=len(DiscreteInput)).bits
                ir = self._call_locked("input registers 0..6", self._client.read_input_registers, start, count=count).registers
            host_ns = time.perf_counter_ns()
        try:
            phase, fault, reject = Phase(ir[InputReg.PHASE]), FaultCode(ir[InputReg.FAULT_CODE]), RejectReason(ir[InputReg.LAST_REJECT])
        except ValueError as exc:
            raise DeviceProtocolError(self.device, f"status register out of the TCM-1 enumerations: {exc}") from exc
        status = ControllerStatus(
            *(bool(di[d]) for d in DiscreteInput),
            force_n=units.dn_to_n(units.to_signed16(ir[InputReg.ACTUAL_FORCE])),
            phase=phase,
            fault_code=fault,
            uptime_s=units.ms_to_s((ir[InputReg.UPTIME_MS_HI] << 16) | ir[InputReg.UPTIME_MS_LO]),
            position_m=units.dmm_to_m(units.to_signed16(ir[InputReg.POSITION])),
            last_reject=reject,
            host_ns=host_ns,
            sent_ns=sent_ns,
        )
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

    def identity(self) -> ControllerIdentity:
        start, count = IDENTITY_INPUT_SPAN
        regs = self._call("identity (input 100..111)", self._client.read_input_registers, start, count=count).registers
        if regs[0] != PROTOCOL_VERSION:
            raise DeviceProtocolError(
                self.device,
                f"PROTOCOL_VERSION is 0x{regs[0]:04X}, expected 0x{PROTOCOL_VERSION:04X}",
                "this is not a TCM-1 1.0 controller: check the rig file's controller address",
            )
        try:
            kind = DeviceKind(regs[3])
        except ValueError as exc:
            other = controller_for_device(regs[3])
            if other is not None:
                raise DeviceProtocolError(self.device, f"DEVICE_KIND {regs[3]} is an {other.protocol} controller, "
                                          "not TCM-1", f"set table.kind to one of {', '.join(other.tables)}") from exc
            raise DeviceProtocolError(self.device, f"DEVICE_KIND {regs[3]} is not 1, 2 or 3") from exc
        return ControllerIdentity(
            protocol_version=regs[0],
            firmware_version=regs[1],
            rated_force_n=units.dn_to_n(regs[2]),
            kind=kind,
            serial=decode_serial(regs[4 : 4 + SERIAL_REGISTERS]),
        )

    def residual_force(self) -> float:
        return units.dn_to_n(self.read_holding(Holding.RESIDUAL_FORCE)[0])

    def settings(self) -> dict[Holding, int]:
        regs = self.read_holding(Holding.TARGET_FORCE, count=len(Holding))
        return {h: regs[h] for h in Holding}

    # ------------------------------------------------------------ commands
    def enable(self) -> int:
        return self.write_coil(Coil.ENABLE, True)

    def disable(self) -> int:
        return self.write_coil(Coil.ENABLE, False)

    def start(self) -> int:
        lease.motion()  # the heartbeat's lease is short again before the table can pull
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
            self.write_holding(Holding.HEARTBEAT, self._heartbeat_count)
            return time.perf_counter_ns()

    def _guard(self, newtons: float, what: str, testing_interlock: bool) -> None:
        if newtons < 0:
            raise ValueError(f"{what} must be >= 0 N, got {newtons} N")
        if self.safety_limit_n is not None and newtons > self.safety_limit_n and not testing_interlock:
            raise SafetyGuardError(
                f"{self.device}: refusing to command {what} {newtons:.1f} N above the rig's safety limit "
                f"{self.safety_limit_n:.1f} N — pass testing_interlock=True only in an interlock test"
            )

    def set_target_force(self, newtons: float, *, testing_interlock: bool = False) -> None:
        self._guard(newtons, "target force", testing_interlock)
        self.write_holding(Holding.TARGET_FORCE, units.n_to_dn(newtons))

    def set_rest_force(self, newtons: float) -> None:
        self._guard(newtons, "rest force", False)
        self.write_holding(Holding.REST_FORCE, units.n_to_dn(newtons))

    def set_force_limit(self, newtons: float, *, testing_interlock: bool = False) -> None:
        self._guard(newtons, "force limit", testing_interlock)
        self.write_holding(Holding.FORCE_LIMIT, units.n_to_dn(newtons))

    def set_ramp_rates(self, up_n_per_s: float | None = None, down_n_per_s: float | None = None) -> None:
        if up_n_per_s is not None:
            self.write_holding(Holding.RAMP_UP_RATE, units.n_to_dn(up_n_per_s))
        if down_n_per_s is not None:
            self.write_holding(Holding.RAMP_DOWN_RATE, units.n_to_dn(down_n_per_s))

    def set_mode(self, intermittent: bool) -> None:
        self.write_holding(Holding.MODE, 1 if intermittent else 0)

    def set_times(self, hold_s: float | None = None, rest_s: float | None = None, treatment_s: float | None = None) -> None:
        if hold_s is not None:
            self.write_holding(Holding.HOLD_TIME, units.s_to_ds(hold_s))
        if rest_s is not None:
            self.write_holding(Holding.REST_TIME, units.s_to_ds(rest_s))
        if treatment_s is not None:
            self.write_holding(Holding.TREATMENT_TIME, int(round(treatment_s)))

    def set_watchdog(self, seconds: float) -> None:
        """0 disables it; the period is in the table's clock (K x wall on an emulator)."""
        self.write_holding(Holding.WATCHDOG_MS, units.s_to_ms(seconds))

    # ------------------------------------------------------------ safe state
    def make_safe(self) -> list[str]:
        """Emergency release and de-energise, tolerating a dead link; returns what failed."""
        problems = []
        for step, action in (("ESTOP", self.emergency_stop), ("ENABLE 0", self.disable)):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 — every exit path must try both
                problems.append(f"{step}: {exc}")
        return problems
