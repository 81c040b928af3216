"""The numbers of one emulated flexion-distraction table, defects included.

Why one frozen dataclass with the defects beside the nominal figures: a defect of a
flexion-distraction table (a stop that overruns, a brake that creeps, a section that
returns to neutral by itself after RESET, one side of lateral flexion short, an
obstruction threshold set too high...) is a different number in the table, so the
faults catalogue switches one on with `dataclasses.replace`, and the controller model
(rigs/emulator/fd_controller.py) has no branch per defect: it always reads these fields,
whose nominal values are the contract's behaviour.

Figures: shared/domain/flexion-distraction-reference.md's proposed defaults (rated travel
25°/15°, 20 °/s, 300 N, residual 10 N; ACCEL 40 °/s², OBSTRUCTION_FORCE 80 N, BACKOFF
2.0°); the emergency deceleration stops 20 °/s in well under 0.1 s and 1.0°.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from drivers.tcm1 import DeviceKind as TractionKind
from rigs.emulator.physics import TableParams


@dataclass(frozen=True)
class FdParams:
    serial: str = "EMU-FD-0000"
    firmware: int = 0x0100
    rated_depth_deg: float = 25.0
    rated_lateral_deg: float = 15.0
    rated_speed_deg_s: float = 20.0
    accel_deg_s2: float = 40.0  # ACCEL: every normal move
    obstruction_force_n: float = 80.0  # OBSTRUCTION_FORCE as the register states it
    backoff_deg: float = 2.0  # BACKOFF as the register states it
    rated_force_n: float = 300.0  # the distraction winch
    residual_force_n: float = 10.0
    # the drive's emergency stop: a reaction time at speed, then this deceleration
    emergency_decel_deg_s2: float = 500.0
    emergency_reaction_s: float = 0.004
    # power loss: the fail-safe brake alone
    brake_decel_deg_s2: float = 250.0
    brake_reaction_s: float = 0.012
    # the drive's encoders against the true angles: encoder = true x (1 + gain) + offset
    encoder_offset_deg: tuple[float, float] = (0.0, 0.0)
    encoder_gain_error: tuple[float, float] = (0.0, 0.0)
    obstacle_stiffness_n_per_deg: float = 50.0  # the padded load cell (a stiff spring)
    # the ankle cuffs swing on an arc about the pivot: lowering or swinging the section
    # (either side) shortens the strap line by this much per degree (flexion, lateral), which
    # the winch's force loop takes up while the distraction is held (DX-STATIC)
    strap_take_up_m_per_deg: tuple[float, float] = (0.00025, 0.00025)
    release_wear: float = 0.0  # the winch's release valve: its release slower by this fraction (rig emulate --wear)

    # -- defect hooks: the nominal value of each is the contract's behaviour -------------
    stop_overrun_deg: float = 0.0  # an emergency stop coasts this far before it decelerates
    brake_creep_deg_s: float = 0.0  # the brake lets the section creep away from neutral
    reset_returns_to_neutral: bool = False  # RESET starts a move to neutral by itself
    side_depth_factor: tuple[float, float] = (1.0, 1.0)  # lateral depth reached: (left +, right -)
    depth_offset_deg: float = 0.0  # every move out ends this much beyond its depth
    speed_factor: float = 1.0  # cruise speed reached / SPEED
    accel_factor: float = 1.0  # acceleration reached / ACCEL
    obstruction_trip_factor: float = 1.0  # the threshold the drive uses / OBSTRUCTION_FORCE
    backoff_factor: float = 1.0  # back-off travelled / BACKOFF
    pause_factor: float = 1.0
    rest_factor: float = 1.0
    extra_cycles: int = 0  # cycles run beyond CYCLES
    treatment_time_factor: float = 1.0
    overtravel_margin_deg: float = 0.0  # the over-travel supervision trips this far beyond the limit
    limits_locked_while_enabled: bool = True
    unplug_is_trigger: bool = True  # unplugging the patient switch while RUNNING stops the section
    return_short_deg: float = 0.0  # a cycle's move back stops this far short of neutral
    depth_range_slack_dd: int = 0  # a depth write is taken up to this many register steps (d°) above its limit
    moving_take_up_factor: float = 1.0  # the winch's take-up speed while the section moves / its own
    start_refused_while_latched: bool = True  # START checks the latches (ESTOP, trips, FAULT_CODE)
    release_on_trigger: bool = True  # an emergency trigger releases the distraction
    reset_force_factor: float = 1.0  # RESET is refused only above this multiple of RESIDUAL_FORCE

    @classmethod
    def for_seed(cls, seed: int = 0, **changes) -> "FdParams":
        """A table with its individual imperfections drawn from the seed."""
        rng = np.random.default_rng([seed, 0xFD1])
        base = cls(
            serial=f"EMU-FD-{seed % 10000:04d}",
            emergency_decel_deg_s2=cls.emergency_decel_deg_s2 * float(rng.uniform(0.9, 1.1)),
            brake_decel_deg_s2=cls.brake_decel_deg_s2 * float(rng.uniform(0.9, 1.1)),
            encoder_offset_deg=(float(rng.normal(0.0, 0.03)), float(rng.normal(0.0, 0.03))),
            encoder_gain_error=(float(rng.normal(0.0, 0.002)), float(rng.normal(0.0, 0.002))),
        )
        return replace(base, **changes)

    def winch(self, seed: int = 0) -> TableParams:
        """The distraction winch's numbers for the traction force loop: an ankle-strap line
        is as soft as a cervical halter, so the cervical table's winch with this table's
        rating."""
        cervical = TableParams.for_kind(TractionKind.CERVICAL, seed)
        return replace(cervical, rated_force_n=self.rated_force_n, residual_force_n=self.residual_force_n,
                       serial=self.serial, carriage_max_m=0.15,
                       release_tau_s=cervical.release_tau_s * (1.0 + self.release_wear))
