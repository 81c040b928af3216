"""Serve the emulated table's controller (TCM-1 or FDC-1) and stimulus module (SIO-1) over Modbus.

Built on pymodbus 3.16's simulator: each device is a `SimDevice` whose `action` is the
device. The action brings the table up to the present, refuses or applies writes, and
fills the register image on reads, so pymodbus stays the framing and transport layer
and the contract's rules live in the controller models (`controller.py` for TCM-1,
`fd_controller.py` for FDC-1). Which addresses exist is the protocol's `RegisterMap`,
built from its driver-side map (drivers/tcm1.py, drivers/fdc1.py); the models answer the
same calls, so one device class serves either. Bit reads are validated by a registered
request class because the simulator hands the action 16-bit words only.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.transaction import TransactionManager

from drivers import fdc1, tcm1, units
from drivers.tcm1 import (
    RTU_BAUDRATE,
    RTU_BYTESIZE,
    RTU_PARITY,
    RTU_STOPBITS,
    VALID_STIMULUS_COILS,
    StimulusCoil,
)
from rigs.emulator.clock import one_instant
from rigs.emulator.controller import Refused
from rigs.emulator.latency import REPLIES

READ_FC = {1: "c", 2: "d", 3: "h", 4: "i"}
WRITE_FC = {5: "c", 15: "c", 6: "h", 16: "h"}


class _PromptRequestHandler(ServerRequestHandler):
    """Handles every request of a read as a task on the loop it already runs on.

    Two changes to pymodbus' handler, same coroutine otherwise:
    * pymodbus schedules each request through `run_coroutine_threadsafe` even though the
      call comes from the loop's own thread; that detour wakes the loop through its
      self-pipe and halves the emulator's request rate. Here the request is handled
      the moment it is read (`_run_now`), not behind whatever else the loop has queued.
    * pymodbus decodes one frame per read and keeps the rest of the bytes until more
      arrive, so a second request sent right behind the first waits for a third. Here
      every complete frame of a read is handled, each with its own request, all of them
      as of the instant the read arrived (a status snapshot is one sample of the table).
    Each reply's latency (request read -> reply written) goes to the emulator's record.
    """

    def callback_data(self, data: bytes, addr: tuple | None = None) -> int:
        arrived = time.perf_counter_ns()
        with one_instant(arrived):  # the frames of one read see one state of the table
            return self._handle_frames(data, addr, arrived)

    def _handle_frames(self, data: bytes, addr: tuple | None, arrived: int) -> int:
        used = 0
        while used < len(data):
            try:
                n = TransactionManager.callback_data(self, data[used:], addr)
            except ModbusIOException:  # pymodbus' own handler answers a frame it cannot decode
                return used + ServerRequestHandler.callback_data(self, data[used:], addr)
            if not n:
                break  # an incomplete frame: kept until the rest arrives
            used += n
            if self.last_pdu:
                pdu, pdu.arrived_ns = self.last_pdu, arrived
                _run_now(self._handle(pdu, self.last_addr), self.loop)
        return used

    async def _handle(self, pdu, addr) -> None:
        # handle_request reads the request from last_pdu; the emulator's actions never
        # yield to the loop, so nothing else can change it before the reply is sent
        self.last_pdu, self.last_addr = pdu, addr
        await self.handle_request()

    def server_send(self, pdu, addr):
        super().server_send(pdu, addr)
        arrived = getattr(self.last_pdu, "arrived_ns", None)
        if arrived is not None:
            REPLIES.add("modbus", arrived)


def _run_now(coro, loop: asyncio.AbstractEventLoop) -> None:
    """Run a coroutine to its end now, on this thread; if it has to wait for something
    after all, it goes on as a task once that is done. The emulator's device actions
    never wait, so a request is answered within the read that brought it."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    waiting.add_done_callback(lambda _: loop.create_task(coro))


class _PromptMixin:
    def callback_new_connection(self):
        return _PromptRequestHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class EmulatorTcpServer(_PromptMixin, ModbusTcpServer):
    pass


class EmulatorSerialServer(_PromptMixin, ModbusSerialServer):
    pass


def _bits_block() -> list[SimData]:
    return [SimData(0, values=[False] * 16, datatype=DataType.BITS)]


def _words(address: int, count: int) -> SimData:
    return SimData(address, count=count, values=0, datatype=DataType.REGISTERS)


def _pack_bits(bits: list[bool]) -> int:
    return sum(1 << i for i, bit in enumerate(bits) if bit)


def _span_ok(valid: frozenset[int], address: int, count: int) -> bool:
    return count >= 1 and all(a in valid for a in range(address, address + count))


def _wrong_unit_device(shape) -> SimDevice:
    """Device id 0 answers every unit id that is not the device's: exception 0B."""

    async def action(*_args) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE

    return SimDevice(id=0, simdata=shape(), action=action)


@dataclass(frozen=True)
class RegisterMap:
    """The addresses a controller protocol has (anything else is 02) and its pulse coils."""

    coils: frozenset[int]
    discrete: frozenset[int]
    holding: frozenset[int]
    input: frozenset[int]
    pulse_coils: frozenset[int]

    def valid(self, kind: str) -> frozenset[int]:
        return {"c": self.coils, "d": self.discrete, "h": self.holding, "i": self.input}[kind]

    def shape(self):
        """The simulator's blocks: one per contiguous run of register addresses."""
        return (_bits_block(), _bits_block(), _runs(self.holding), _runs(self.input))


TCM1_MAP = RegisterMap(tcm1.VALID_COILS, tcm1.VALID_DISCRETE, tcm1.VALID_HOLDING, tcm1.VALID_INPUT,
                       frozenset(tcm1.PULSE_COILS))
FDC1_MAP = RegisterMap(fdc1.VALID_COILS, fdc1.VALID_DISCRETE, fdc1.VALID_HOLDING, fdc1.VALID_INPUT,
                       frozenset(fdc1.PULSE_COILS))


def _runs(addresses: frozenset[int]) -> list[SimData]:
    """The simulator's register blocks: one per contiguous run of addresses."""
    blocks: list[SimData] = []
    first = prev = None
    for addr in sorted(addresses):
        if first is not None and addr != prev + 1:
            blocks.append(_words(first, prev - first + 1))
            first = None
        if first is None:
            first = addr
        prev = addr
    if first is not None:
        blocks.append(_words(first, prev - first + 1))
    return blocks


class ControllerDevice:
    """The controller action bound to one emulated table (its `controller` model)."""

    def __init__(self, table, registers: RegisterMap = TCM1_MAP) -> None:
        self.table = table
        self.registers = registers
        self.valid = {kind: registers.valid(kind) for kind in "cdhi"}
        self._echo: dict[int, bool] = {}

    def shape(self):
        return self.registers.shape()

    async def action(self, fc, start, address, count, registers, values) -> ExcCodes | None:
        table = self.table
        table.sync(exact=values is not None)  # a write acts at its true instant
        model = table.controller
        if fc in WRITE_FC and values is not None:
            kind = WRITE_FC[fc]
            if not _span_ok(self.valid[kind], address, len(values)):
                return ExcCodes.ILLEGAL_ADDRESS
            try:
                if kind == "c":
                    model.write_coils(address, [bool(v) for v in values])
                    for i in range(len(values)):
                        self._echo[address + i] = bool(values[i])
                        if address + i in self.registers.pulse_coils:
                            values[i] = False
                else:
                    model.write_holding(address, [int(v) for v in values])
            except Refused as refusal:
                return ExcCodes(refusal.code)
            return None
        kind = READ_FC.get(fc) or WRITE_FC.get(fc)
        if kind is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if fc in (5, 6):  # pymodbus reads back after a single write to build the echo
            if fc == 5:
                values_now = model.coil_values()
                registers[0] = _pack_bits(
                    [self._echo.get(i, v) for i, v in enumerate(values_now)] + [False] * (16 - len(values_now))
                )
            return None
        if kind == "c":
            registers[0] = _pack_bits(model.coil_values())
        elif kind == "d":
            registers[0] = _pack_bits(model.discrete_inputs())
        elif not _span_ok(self.valid[kind], address, count):
            return ExcCodes.ILLEGAL_ADDRESS
        elif kind == "h":
            for i in range(count):
                registers[address - start + i] = model.h(address + i)
        else:
            for i in range(count):
                registers[address - start + i] = model.input_register(address + i)
        return None


class StimulusDevice:
    """SIO-1: plain relay coils wired into the table; `relays` the ones this bench's
    module has (OBSTACLE, coil 4, only with an obstacle slide: else 02)."""

    def __init__(self, table, on_change: Callable | None = None,
                 relays: frozenset[int] = VALID_STIMULUS_COILS) -> None:
        self.table = table
        self.on_change = on_change
        self.relays = relays

    @staticmethod
    def shape():
        return (_bits_block(), _bits_block(), [_words(0, 1)], [_words(0, 1)])

    async def action(self, fc, start, address, count, registers, values) -> ExcCodes | None:
        table = self.table
        table.sync(exact=values is not None)
        if fc in (5, 15) and values is not None:
            if not _span_ok(self.relays, address, len(values)):
                return ExcCodes.ILLEGAL_ADDRESS
            for i, value in enumerate(values):
                relay = StimulusCoil(address + i)
                if table.relays[relay] != bool(value):
                    table.set_relay(relay, bool(value))
            return None
        if fc in (1, 5):
            registers[0] = _pack_bits([table.relays[c] for c in StimulusCoil])
            return None
        if fc in (2, 3, 4, 6, 16):
            return ExcCodes.ILLEGAL_ADDRESS
        return ExcCodes.ILLEGAL_FUNCTION


class PatientSimulator:
    """Emulator-only side channel: a patient (or a snag) pulling back on the harness.

    Not part of any contract: a real bench has no such device, so the suites that
    need it are `emulator_only`. Holding register 0 is the pull in 0.1 N, register 1
    the rate it changes at in 0.1 N/s (0: at once).
    """

    def __init__(self, table) -> None:
        self.table = table

    @staticmethod
    def shape():
        return (_bits_block(), _bits_block(), [_words(0, 2)], [_words(0, 1)])

    async def action(self, fc, start, address, count, registers, values) -> ExcCodes | None:
        self.table.sync(exact=values is not None)
        mech = self.table.mechanics
        if fc in (6, 16) and values is not None:
            if not _span_ok(frozenset({0, 1}), address, len(values)):
                return ExcCodes.ILLEGAL_ADDRESS
            for i, value in enumerate(values):
                if address + i == 0:
                    mech.external_target_n = units.dn_to_n(value)
                else:
                    mech.external_rate_n_s = units.dn_to_n(value)
            return None
        if fc == 3:
            if not _span_ok(frozenset({0, 1}), address, count):
                return ExcCodes.ILLEGAL_ADDRESS
            current = [units.n_to_dn(mech.external_target_n), units.n_to_dn(mech.external_rate_n_s)]
            for i in range(count):
                registers[address - start + i] = current[address + i]
            return None
        return ExcCodes.ILLEGAL_ADDRESS


def patient_simulator_devices(table) -> tuple[list[SimDevice], list]:
    device = PatientSimulator(table)
    return [SimDevice(id=1, simdata=device.shape(), action=device.action)], []


def _checked(request_class, valid: frozenset[int]):
    """`request_class` refusing (02) a read that touches an address outside `valid`: the
    simulator's own check knows only the block it serves, not the contract's addresses."""

    class Checked(request_class):
        async def datastore_update(self, context, device_id):
            response = await super().datastore_update(context, device_id)
            if isinstance(response, ExceptionResponse) or _span_ok(valid, self.address, self.count):
                return response
            return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_ADDRESS)

    Checked.__name__ = Checked.__qualname__ = f"Checked{request_class.__name__}"
    return Checked


def _checked_bit_reads(valid_coils: frozenset[int], valid_discrete: frozenset[int]):
    """Request classes that refuse bit reads touching addresses outside the contract."""
    return [_checked(ReadCoilsRequest, valid_coils), _checked(ReadDiscreteInputsRequest, valid_discrete)]


def controller_devices(table, unit_id: int = 1, registers: RegisterMap = TCM1_MAP) -> tuple[list[SimDevice], list]:
    device = ControllerDevice(table, registers)
    devices = [
        SimDevice(id=unit_id, simdata=device.shape(), action=device.action),
        _wrong_unit_device(registers.shape),
    ]
    return devices, _checked_bit_reads(registers.coils, registers.discrete)


def stimulus_devices(table, unit_id: int = 1,
                     relays: frozenset[int] = VALID_STIMULUS_COILS) -> tuple[list[SimDevice], list]:
    device = StimulusDevice(table, relays=relays)
    devices = [
        SimDevice(id=unit_id, simdata=device.shape(), action=device.action),
        _wrong_unit_device(StimulusDevice.shape),
    ]
    return devices, _checked_bit_reads(relays, frozenset())


async def serve_tcp(devices_and_pdus, host: str = "127.0.0.1", port: int = 0) -> tuple[EmulatorTcpServer, int]:
    devices, pdus = devices_and_pdus
    server = EmulatorTcpServer(devices, address=(host, port), custom_pdu=pdus)
    await server.serve_forever(background=True)
    bound = server.transport.sockets[0].getsockname()[1]
    return server, bound


async def serve_rtu(devices_and_pdus, port: str, parity: str = RTU_PARITY) -> EmulatorSerialServer:
    """The controller on a serial line (RTU, 19200 8E1) — e.g. one end of a pty pair.

    `parity` exists because Linux pseudo-terminals in some sandboxes refuse PARENB;
    a pty carries no parity bit anyway, so tests over a pty pair use "N".
    """
    devices, pdus = devices_and_pdus
    server = EmulatorSerialServer(
        devices,
        framer=FramerType.RTU,
        port=port,
        baudrate=RTU_BAUDRATE,
        bytesize=RTU_BYTESIZE,
        parity=parity,
        stopbits=RTU_STOPBITS,
        custom_pdu=pdus,
    )
    await server.serve_forever(background=True)
    return server
