"""The command rules FDC-1 states "as TCM-1", written once for both emulated controllers
(rigs/emulator/controller.py, rigs/emulator/fd_controller.py): READY from the SIO-1
wiring and the latches, a write all or nothing with its refusal named in LAST_REJECT,
the pulse coils acting on a 1 only, and the order in which START and RESET name their
first refusal. The two contracts share these lines word for word; a copy in each model
would let one drift from the other (a refusal reason, a rolled-back field) unseen.

A model using them has `relays` (SIO-1 coil -> on), `st` (with `enabled`, `disabling`,
`last_reject`), `latched`, and `_enable`, `_start`, `_stop`, `_estop_coil`, `_reset`,
`_write_one_holding`; what a refused write must put back is its own (`_snapshot`,
`_rollback`, `_commit`).
"""

from __future__ import annotations

import copy

from drivers.tcm1 import Coil, RejectReason, StimulusCoil


class Refused(Exception):
    """A write the device refuses: Modbus exception `code`, LAST_REJECT `reason`."""

    def __init__(self, code: int, reason: RejectReason) -> None:
        super().__init__(f"exception {code:02X}, reason {reason.name}")
        self.code = code
        self.reason = reason


ILLEGAL_ADDRESS, ILLEGAL_VALUE, REFUSED = 0x02, 0x03, 0x04


class CommandRules:
    """TCM-1's command rules, mixed into each controller model."""

    # ------------------------------------------------------------------ the wiring
    @property
    def powered(self) -> bool:
        return not self.relays[StimulusCoil.MAINS_CUT]

    @property
    def switch_connected(self) -> bool:
        return not self.relays[StimulusCoil.PATIENT_SWITCH_UNPLUG]

    @property
    def switch_pressed(self) -> bool:
        return self.switch_connected and self.relays[StimulusCoil.PATIENT_SWITCH]

    @property
    def ready(self) -> bool:
        return self.powered and self.switch_connected and not self.latched

    def _refuse_enable(self) -> None:
        """ENABLE 1 is refused unless READY: NOT_READY for the wiring (mains, the switch
        unplugged), else LATCHED."""
        if self.ready:
            return
        if not self.powered or not self.switch_connected:
            raise Refused(REFUSED, RejectReason.NOT_READY)
        raise Refused(REFUSED, RejectReason.LATCHED)

    # ------------------------------------------------------------------ writes
    def write_holding(self, start: int, values: list[int]) -> None:
        """FC 6/16: all or nothing, checked in address order; raises Refused."""
        self._transaction(lambda: [self._write_one_holding(start + i, v) for i, v in enumerate(values)])

    def write_coils(self, start: int, values: list[bool]) -> None:
        """FC 5/15: all or nothing, checked in address order; raises Refused."""
        self._transaction(lambda: [self._write_one_coil(start + i, v) for i, v in enumerate(values)])

    def _transaction(self, apply) -> None:
        """A refused write leaves the device as it found it, LAST_REJECT naming why."""
        saved = self._snapshot()
        try:
            apply()
        except Refused as refusal:
            self._rollback(saved)
            self.st.last_reject = refusal.reason
            raise
        self._commit()

    def _snapshot(self):
        """What a refused write puts back: the state and the event log's length."""
        return copy.deepcopy(self.st), len(self.events)

    def _rollback(self, saved) -> None:
        self.st, events = saved
        del self.events[events:]

    def _commit(self) -> None:
        """After an accepted write (nothing to do unless a model defers some of its effects)."""

    def _write_one_coil(self, addr: int, value: bool) -> None:
        """ENABLE is a state; the others are pulses, acting on a 1 (a 0 does nothing)."""
        coil = Coil(addr)
        if coil is Coil.ENABLE:
            self._enable(value)
        elif value:
            {Coil.START: self._start, Coil.STOP: self._stop, Coil.ESTOP: self._estop_coil, Coil.RESET: self._reset}[coil]()

    # ------------------------------------------------------------------ refusal order
    def _refuse_start(self, *, latched: bool, out_of_range: bool, switch_required: bool = True) -> None:
        """START's refusals, the first failing one named: not ENABLED (or being disabled)
        or the patient switch unplugged (NOT_READY), something latched or the switch
        pressed (LATCHED), a setpoint above its limit (OUT_OF_RANGE)."""
        st = self.st
        if not st.enabled or st.disabling or (switch_required and not self.switch_connected):
            raise Refused(REFUSED, RejectReason.NOT_READY)
        if latched or self.switch_pressed:
            raise Refused(REFUSED, RejectReason.LATCHED)
        if out_of_range:
            raise Refused(REFUSED, RejectReason.OUT_OF_RANGE)

    def _refuse_reset(self, *, switch_pressed: bool, force_present: bool) -> None:
        """RESET's refusals, the switch first: still pressed (LATCHED), then a force above
        the residual (FORCE_PRESENT)."""
        if switch_pressed:
            raise Refused(REFUSED, RejectReason.LATCHED)
        if force_present:
            raise Refused(REFUSED, RejectReason.FORCE_PRESENT)
