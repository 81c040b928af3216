"""Defence in depth: release the table by every independent path the bench has, in a
stated order, until a reading confirms it, or say loudly that nothing could.

Why: a safe-state command that fails or times out on a stalled link used to be logged
and forgotten while the heartbeat went on feeding the watchdog, so a table could keep
pulling with the runner believing it released. Now every exit path ends in `release()`,
which does not return "safe" on a command's word but on a force reading.

The order, each step only when the ones before it did not confirm:
  1. ESTOP + ENABLE 0 on the controller's safety link (the main link if there is none,
     and the main link again when the safety link failed);
  2. if any command failed: stop the heartbeat's beats at once (its lease is dropped), so
     the controller's own watchdog releases within one period;
  3. the stimulus module's e-stop button relay (the table's own red button);
  4. the stimulus module's mains cut (the brake releases on power loss).
After each step the table is read, controller first (safety link, then main link), then
the reference gauge, until it shows the table released or the step's window (the
release time the specification allows, in wall time, plus link slack) has passed.
"Released" is the protocol's own rule, stated once on its status class (`released`;
`released_by_force` for a gauge reading alone): on TCM-1 the force at or below the
residual; on FDC-1 that and the section's brake engaged, which no gauge can see.
Confirmation stops the ladder; relays pressed on the way stay pressed (the next test's
preparation releases them), so a table that needed them stays released.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from drivers.controller import ControllerStatus, TractionController
from drivers.tcm1 import StimulusCoil

#: wall seconds added to each step's window for the links' own latency
LINK_SLACK_S = 0.5
#: how often the force is read while a step's window runs (wall s)
READ_EVERY_S = 0.01


@dataclass
class ForceSeen:
    force_n: float
    by: str  # which instrument over which link
    at_ns: int  # perf_counter_ns of the reading
    released: bool = False  # the reading shows the table released, by its protocol's rule


@dataclass
class SafeState:
    """What `release()` did and saw; `confirmed` only on a reading that shows the table
    released (the force at or below the residual, and on FDC-1 the section braked)."""

    confirmed: bool
    residual_n: float
    steps: list[str] = field(default_factory=list)  # what was done, in order
    problems: list[str] = field(default_factory=list)  # what failed, one line each
    last: ForceSeen | None = None  # the last force any instrument showed
    status: ControllerStatus | None = None  # the confirming controller status, if it was one
    beats_stopped: bool = False

    def loud_line(self, rig_name: str) -> str:
        seen = (f"last force seen {self.last.force_n:.1f} N by {self.last.by} "
                f"{(time.perf_counter_ns() - self.last.at_ns) / 1e9:.1f} s ago" if self.last
                else "no instrument could read the force")
        if self.last is not None and self.last.force_n <= self.residual_n and not self.last.released:
            seen += " (no reading showed the rest of the release, the section's brake engaged)"
        return (f"TABLE NOT CONFIRMED SAFE — {rig_name}: {seen}; tried {', '.join(self.steps) or 'nothing'}"
                f"{' (' + '; '.join(self.problems[:3]) + ')' if self.problems else ''} — "
                "take the load off the patient by hand (table's e-stop, mains plug) and check the links")

    def to_dict(self) -> dict:
        return {"confirmed": self.confirmed, "residual_n": self.residual_n, "steps": self.steps,
                "problems": self.problems, "beats_stopped": self.beats_stopped,
                "last_force_n": None if self.last is None else self.last.force_n,
                "last_force_by": None if self.last is None else self.last.by}


def _controller_commands(rig) -> list[str]:
    """Step 1: the rig's release commands (Rig.release_attempts: the safety link, then the
    main link once more, as on RTU, where a late reply can spoil a first attempt); returns
    every failure. A safety link that failed stays a problem even when the retry took both
    commands: the beats stop all the same (the issue's rule: a failed safe-state command
    ends them), and the user hears of it."""
    return [p for attempt in rig.release_attempts() for p in attempt]


def _read_force(rig, state: SafeState) -> ForceSeen | None:
    """One reading: controller over each link, then the gauge; None if none answered."""
    links: list[tuple[TractionController, str]] = []
    if rig.safety is not None:
        links.append((rig.safety, "controller ACTUAL_FORCE (safety link)"))
    links.append((rig.controller, "controller ACTUAL_FORCE (test link)"))
    for ctrl, by in links:
        try:
            st = ctrl.status()
        except Exception:  # noqa: BLE001 — the next instrument may answer
            continue
        state.status = st
        return ForceSeen(st.force_n, by, st.host_ns, st.released(state.residual_n))
    gauge = rig.gauge
    if gauge is not None and not getattr(gauge, "streaming", False):
        try:
            force = gauge.read()
        except Exception:  # noqa: BLE001
            return None
        rule = type(rig.controller).Status.released_by_force
        return ForceSeen(force, f"reference gauge ({gauge.resource})", time.perf_counter_ns(),
                         rule(force, state.residual_n))
    return None


def _confirm(rig, state: SafeState, window_s: float) -> bool:
    deadline = time.perf_counter_ns() + int(window_s * 1e9)
    state.status = None
    while True:
        seen = _read_force(rig, state)
        if seen is not None:
            state.last = seen
            if seen.released:
                return True
        if time.perf_counter_ns() >= deadline:
            return False
        time.sleep(READ_EVERY_S)


def release(rig, *, residual_n: float, release_wall_s: float, watchdog_wall_s: float = 0.0,
            stop_beats: Callable[[], None] | None = None) -> SafeState:
    """Release the table and confirm it (module docstring: the order and the windows).

    `release_wall_s`: the release time the specification allows, in wall seconds;
    `watchdog_wall_s`: the watchdog period in wall seconds (the window of step 2)."""
    state = SafeState(confirmed=False, residual_n=residual_n)
    window = release_wall_s + LINK_SLACK_S
    state.steps.append("controller ESTOP + ENABLE 0")
    state.problems += _controller_commands(rig)
    if state.problems and stop_beats is not None:
        stop_beats()
        state.beats_stopped = True
        state.steps.append("heartbeat stopped (watchdog)")
    if _confirm(rig, state, window + (watchdog_wall_s if state.beats_stopped else 0.0)):
        state.confirmed = True
        return state
    if not state.beats_stopped and stop_beats is not None:  # commands taken, force still there
        stop_beats()
        state.beats_stopped = True
        state.steps.append("heartbeat stopped (watchdog)")
    for relay, what in ((StimulusCoil.ESTOP_BUTTON, "stimulus e-stop button relay"),
                        (StimulusCoil.MAINS_CUT, "stimulus mains cut")):
        if rig.stimulus is None:
            break
        state.steps.append(what)
        try:
            rig.stimulus.set(relay, True)
        except Exception as exc:  # noqa: BLE001 — the next path may still work
            state.problems.append(f"{rig.stimulus.device}: {what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        if _confirm(rig, state, window):
            state.confirmed = True
            return state
    return state
