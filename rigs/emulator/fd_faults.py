"""Named defects of the emulated flexion-distraction table (`rig emulate --kind
flexion-distraction --fault NAME`, a rig file's `emulated.faults`).

Why a module of its own: the machinery (registration, look-up, listing, the one-line
errors) is rigs/emulator/faults.py's, one `Catalogue` per table kind; what is here is
only what is wrong with this kind of table. Each defect is a number of `FdParams`
(rigs/emulator/fd_params.py) or a switch of the distraction winch's `Defects` (the
traction winch's own, FDC-1's distraction is "as TCM-1"), never a branch of the
controller model; each names the requirement(s) of suites/specs/flexion-distraction.yaml
that must catch it, and any other requirement it rightly makes FAIL (`collateral`).
docs/faults.md says, per defect, which part of the plan catches it.
"""

from __future__ import annotations

import math

from rigs.emulator.faults import Catalogue, register_catalogue
from rigs.emulator.fd_params import FdParams

FLEXION_DISTRACTION = Catalogue(FdParams)
register_catalogue(FLEXION_DISTRACTION, ("flexion-distraction",))
defect = FLEXION_DISTRACTION.defect

# -- kinematics: depth, neutral, speed, timing, count, encoder ---------------------------------

defect(
    "lateral-side-short",
    'lateral flexion to the right (-) reaches only 90 % of LATERAL_DEPTH (a mis-set end stop on one side); '
    'the left side and flexion are right',
    ('FD-DEPTH',),
    side_depth_factor=(1.0, 0.9),
)

defect(
    "depth-overshoot",
    'every move out ends 0.8° beyond its depth (the drive decelerates late: a position loop with a wrong '
    'deceleration distance)',
    ('FD-DEPTH',),
    depth_offset_deg=0.8,
)

defect(
    "neutral-short",
    "a cycle's move back stops 0.8° short of neutral (on the side it comes from): the rests are not level; "
    "the encoder reads it honestly, so AT_NEUTRAL is off during the rests",
    ('FD-NEUTRAL',),
    return_short_deg=0.8,
)

defect(
    "slow-cruise",
    'the section cruises at 85 % of SPEED (a speed loop scaled for another gearbox)',
    ('FD-SPEED',),
    speed_factor=0.85,
)

defect(
    "fast-cruise",
    'the section cruises 8 % above SPEED: within FD-SPEED\'s ±10 %, but at SPEED = the rated speed it moves '
    '1.6 °/s above the rated speed',
    ('FD-SPEED.above-rated',),
    speed_factor=1.08,
)

defect(
    "long-pause",
    'the pause at the depth runs 10 % long (the timer counts the deceleration into the pause)',
    ('FD-TIMING',),
    pause_factor=1.10,
)

defect(
    "short-rest",
    'the rest at neutral is 15 % short',
    ('FD-TIMING',),
    rest_factor=0.85,
)

defect(
    "extra-cycle",
    'one cycle more than CYCLES is run (the count is compared after the increment with > instead of >=)',
    ('FD-CYCLES',),
    extra_cycles=1,
)

defect(
    "treatment-timer-slow",
    'the treatment timer runs 15 % slow: a 30 s treatment ends 4.5 s late (within ±30 s), a 4 min session 36 s '
    'late',
    ('FD-CYCLES.time',),
    profile="full",
    treatment_time_factor=1.15,
)

defect(
    "encoder-offset",
    "the flexion encoder reads 0.8° high (zeroed with the section raised): the table believes itself level and "
    "at its depth, so AT_NEUTRAL and FLEXION_ANGLE agree with its plan, not with the section",
    ('FD-ENCODER',),
    collateral={"FD-NEUTRAL": "the section rests where the encoder reads 0, 0.8° above level: the rests are "
                              "truly 0.8° off neutral, FD-NEUTRAL's own finding",
                "FD-DEPTH": "every flexion move out ends 0.8° short of its depth (the encoder reads it there): "
                            "beyond max(0.5°, 5 %) for depths below 16°"},
    encoder_offset_deg=(0.8, 0.0),
)

defect(
    "encoder-scale",
    "the flexion encoder's scale is 4 % high (a gearbox ratio entered wrong): right at neutral, it reads a 25° "
    "depth where the section stands at 24°; the moves end short by as much, within FD-DEPTH's 5 %",
    ('FD-ENCODER',),
    encoder_gain_error=(0.04, 0.0),
)

# -- distraction while the section moves ---------------------------------------------------------

defect(
    "sagging-distraction",
    'while the section moves the winch cannot take up (the drive and the winch share a power stage that gives the '
    'drive priority): the strap line the section shortens is not taken up and the distraction sags until the '
    'section stops',
    ('DX-STATIC',),
    moving_take_up_factor=0.0,
)

# -- interlocks --------------------------------------------------------------------------------

defect(
    "depth-limit-off-by-one",
    "FLEXION_DEPTH's and LATERAL_DEPTH's range checks take one register step (0.1°) above ANGLE_LIMIT / "
    "LATERAL_LIMIT (a <= where < was meant); 0.2° and more above is refused, and START still refuses a depth "
    "above its limit",
    ('IL-DEPTH',),
    depth_range_slack_dd=1,
)

defect(
    "limits-unlocked",
    'ANGLE_LIMIT, LATERAL_LIMIT and FORCE_LIMIT take a write while ENABLED (the lock is missing)',
    ('IL-LIMIT-LOCK',),
    limits_locked_while_enabled=False,
)

defect(
    "late-overtravel",
    'the over-travel supervision trips 6° beyond ANGLE_LIMIT / LATERAL_LIMIT (it compares with the limit plus a '
    'mechanical allowance)',
    ('IL-TRAVEL',),
    overtravel_margin_deg=6.0,
)

defect(
    "start-while-latched",
    'START is accepted while a latch is set (its check forgets the latches and FAULT_CODE): after an emergency stop '
    'the table restarts without RESET',
    ('ES-LATCH', 'IL-START'),
    start_refused_while_latched=False,
)

defect(
    "reset-under-distraction",
    'RESET is accepted with distraction force present (the residual check is missing)',
    ('IL-RESET',),
    reset_force_factor=math.inf,
)

defect(
    "obstruction-threshold-high",
    'the drive trips on an obstruction at 124 N, not the 80 N OBSTRUCTION_FORCE states (the threshold of a '
    'heavier model): at 5 °/s the force on the obstacle peaks just below 130 N, at the rated speed the stopping '
    'travel adds enough to exceed it; the 2° back-off no longer frees the obstacle at either speed',
    ('IL-OBSTRUCT',),
    obstruction_trip_factor=1.55,
)

defect(
    "no-backoff",
    'after an obstruction the section stops but does not back off: it stays pressed on what it caught',
    ('IL-OBSTRUCT.backoff', 'IL-OBSTRUCT.release'),
    backoff_factor=0.0,
)

# -- emergency stop ---------------------------------------------------------------------------

defect(
    "stop-overrun",
    'after an emergency trigger the drive coasts 1.5° before it decelerates (a stop ramp that starts late): the '
    'travel after the trigger is about 2°, 0.5° beyond the 1.5° allowed; the stop time stays within 0.2 s',
    ('ES-TRAVEL',),
    collateral={"IL-OBSTRUCT": "an obstruction stops the section with the same late stop ramp: 1.5° further into the "
                               "obstacle (about 75 N more on it at 50 N/°) puts the peak beyond 130 N, and the 2° "
                               "back-off no longer frees it (release) — a true finding of the obstruction test"},
    stop_overrun_deg=1.5,
)

defect(
    "slow-emergency-stop",
    'the emergency deceleration is 60 °/s² instead of well above ACCEL (the drive uses a normal ramp to stop): '
    'from the rated speed it takes 0.33 s and 3.3°',
    ('ES-TIME', 'ES-TRAVEL'),
    collateral={"IL-OBSTRUCT": "an obstruction stops the section with the same slow deceleration: from the rated "
                               "speed 3.3° further into the obstacle puts the peak far beyond 130 N and the 2° "
                               "back-off no longer frees it (release) — a true finding of the obstruction test"},
    emergency_decel_deg_s2=60.0,
)

defect(
    "creeping-brake",
    'the section\'s brake slips: a held section creeps 0.06 °/s (flexion further down, lateral further out), '
    '0.3° in the 5 s after a stop',
    ('ES-HOLD',),
    brake_creep_deg_s=0.06,
)

defect(
    "returns-after-reset",
    'RESET after an emergency stop moves the section back to neutral by itself (RESET runs the STOP branch)',
    ('ES-HOLD.return',),
    reset_returns_to_neutral=True,
)

defect(
    "unplug-not-a-trigger",
    'unplugging the patient switch while RUNNING is not an emergency trigger (the open loop is not detected): the '
    'treatment goes on',
    ('ES-TIME', 'ES-TRAVEL', 'ES-RELEASE'),
    collateral={"ES-HOLD": "nothing stopped the section: it goes on cycling through the 5 s it should stand still",
                "ES-LATCH": "nothing latched, so START is accepted after the unplug without RESET: the restart "
                            "interlock is missing for that trigger too"},
    unplug_is_trigger=False,
)

defect(
    "distraction-held-on-stop",
    'an emergency trigger stops the section but does not release the distraction (the winch is left holding)',
    ('ES-RELEASE',),
    release_on_trigger=False,
)

defect(
    "late-winch-stop",
    'the winch\'s drive is stopped 80 ms after an emergency trigger (a contactor that drops out late): until then '
    'it pulls in at its top speed and the distraction rises before it is released',
    ('ES-RELEASE.rise',),
    late_drive_stop_s=0.08,
)

defect(
    "slow-distraction-release",
    'the winch\'s release valve is clogged: every emergency release of the distraction pays out about 70 times '
    'too slowly (as `rig emulate --wear 70`): from 250 N it is below the residual only after about 4 s; from '
    '50 N within about 1 s',
    ('ES-RELEASE',),
    release_wear=70.0,
)
