"""SIO-1 stimulus relay module driver: presses the table's buttons and cuts its mains.

Every write returns the perf_counter_ns instant at which the module acknowledged it:
the contract says a relay acts within 1 ms of that acknowledgement, so that instant is
the trigger time of every latency measurement.

One driver for every bench: a flexion-distraction bench's module has one more relay,
OBSTACLE (coil 4, the obstacle slide); a module without a slide answers it with 02, so
the driver is told whether the bench has one (`obstacle_slide`) and reads, and rests,
only the relays the module has.
"""

from __future__ import annotations

import time

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException

from drivers import lease
from drivers.errors import DeviceError, DeviceProtocolError, DeviceTimeout, DeviceUnreachable, ReplyClock
from drivers.kinds import register_stimulus
from drivers.links import ModbusLink
from drivers.tcm1 import STIMULUS_COILS_WITHOUT_SLIDE, StimulusCoil

#: contract: a relay acts within this time of the acknowledged write
RELAY_ACT_WITHIN_S = 1e-3


@register_stimulus("SIO-1")
class StimulusModule:
    def __init__(self, host: str = "127.0.0.1", port: int = 502, unit_id: int = 1, timeout_s: float = 1.0,
                 name: str = "stimulus module", obstacle_slide: bool = False) -> None:
        self.unit_id = unit_id
        #: the relays this module has: OBSTACLE only on a bench with an obstacle slide
        self.relays: tuple[StimulusCoil, ...] = STIMULUS_COILS_WITHOUT_SLIDE + (
            (StimulusCoil.OBSTACLE,) if obstacle_slide else ())
        self.device = f"{name} (modbus-tcp://{host}:{port} unit {unit_id})"
        self.replies = ReplyClock(self.device)
        self._client = ModbusTcpClient(host, port=int(port), timeout=timeout_s, retries=0)

    @classmethod
    def on(cls, link: ModbusLink, *, name: str = "stimulus module", obstacle_slide: bool = False) -> "StimulusModule":
        """A module at `link` (not yet connected): how the connect path opens one."""
        return cls(link.host, int(link.port), link.unit_id, link.timeout_s, name, obstacle_slide)

    def connect(self) -> "StimulusModule":
        self.replies.reset()
        if not self._client.connect():
            raise DeviceUnreachable(self.device, "cannot connect", "check the host/port in the rig file")
        return self

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "StimulusModule":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    def _silent(self, what: str, exc: BaseException) -> DeviceError:
        """No reply: set-up advice only while the module has never answered (ReplyClock)."""
        if isinstance(exc, (ConnectionException, OSError)):
            return self.replies.error(DeviceUnreachable, self.device, f"connection lost or refused during {what}",
                                      "check the host/port in the rig file and that the module is powered")
        return self.replies.error(DeviceTimeout, self.device, f"no reply to {what}",
                                  "check the unit id and that it is an SIO-1 module")

    def _check(self, response, what: str):
        if response.isError():
            code = getattr(response, "exception_code", None)
            fix = "check the rig file's unit id" if code == 0x0B else "check that this is an SIO-1 module"
            if code == 0x02 and what.startswith(StimulusCoil.OBSTACLE.name):
                fix = "this module has no obstacle slide (coil 4): check the bench's obstacle in the rig file"
            raise DeviceProtocolError(self.device, f"exception {code} on {what}", fix)
        return response

    def set(self, relay: StimulusCoil, on: bool) -> int:
        """Drive one relay; returns perf_counter_ns of the acknowledgement."""
        relay = StimulusCoil(relay)
        try:
            response = self._client.write_coil(int(relay), on, device_id=self.unit_id)
        except (ModbusException, OSError) as exc:
            raise self._silent(f"{relay.name} := {int(on)}", exc) from exc
        ack_ns = time.perf_counter_ns()
        self.replies.tick()
        self._check(response, f"{relay.name} := {int(on)}")
        lease.progress()
        return ack_ns

    def press(self, relay: StimulusCoil) -> int:
        return self.set(relay, True)

    def release(self, relay: StimulusCoil) -> int:
        return self.set(relay, False)

    def states(self) -> dict[StimulusCoil, bool]:
        try:
            response = self._client.read_coils(0, count=len(self.relays), device_id=self.unit_id)
        except (ModbusException, OSError) as exc:
            raise self._silent("relay read", exc) from exc
        self.replies.tick()
        bits = self._check(response, "read relays").bits
        lease.progress()
        return {relay: bool(bits[relay]) for relay in self.relays}

    def release_all(self) -> list[str]:
        """Every relay to its rest state (switch released, plugged in, mains on, obstacle
        withdrawn)."""
        problems = []
        for relay in self.relays:
            try:
                self.set(relay, False)
            except Exception as exc:  # noqa: BLE001 — safe-state path tries every relay
                problems.append(f"{relay.name}: {exc}")
        return problems
