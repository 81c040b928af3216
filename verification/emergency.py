"""One emergency-release trial, as the suites and the release-latency benchmark run it:
bring the table into a phase at a force, pull a trigger (a relay, the ESTOP coil or the
heartbeat stopped), capture the reference gauge through the release, then try the
restart the latch must refuse and the RESET that must bring the table back.

The test (suites/test_emergency_release.py) judges what a trial returns; the benchmark
times it. Both run this one procedure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.controller import CommandRefused, refusal_of
from drivers.errors import RigError
from drivers.tcm1 import Phase, StimulusCoil
from verification.bench import BenchTimeout
from verification.measurement import Measurement, Precondition, UncertaintyTerm, Verdict
from verification.release import TriggerForce, trial_trigger_force
from verification.status_watch import StatusWatch
from verification.steps import AFTER_RELEASE_S, IN_PHASE_S, trial_rates

RELAY = {
    "estop_button": StimulusCoil.ESTOP_BUTTON,
    "switch_pressed": StimulusCoil.PATIENT_SWITCH,
    "switch_unplugged": StimulusCoil.PATIENT_SWITCH_UNPLUG,
    "mains_cut": StimulusCoil.MAINS_CUT,
}
PHASE_OF = {"ramp_up": Phase.RAMP_UP, "hold": Phase.HOLD, "ramp_to_rest": Phase.RAMP_TO_REST, "rest": Phase.REST}
#: a trial whose trigger instant is known worse than this (wall s, half-width: the
#: contract's 1 ms relay window plus a normal round trip) is repeated: a scheduling
#: hiccup of the host, not the table, would decide its verdict
MAX_TRIGGER_HALF_WIDTH_S = 0.001
ATTEMPTS = 3
REQUIREMENTS = ("ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP", "ER-LATCH")
WATCHDOG_REQUIREMENT = "WD-TIME"  # timed in the watchdog trials only


@dataclass
class Trial:
    index: int
    trigger: str
    phase: str
    force_n: float
    t: np.ndarray
    f: np.ndarray
    at_trigger: TriggerForce  # the force held at the trigger, fitted once for every measurement of the trial
    half_width_s: float
    restart_refused: bool
    reset_accepted: bool
    phase_seen: str
    released: bool
    capture: object  # the verification.bench.Capture the values were taken from
    #: the rig's own failure while bringing the table back (a link, a relay), not the table's
    rig_failure: Exception | None = None
    #: watchdog trials: when the trip came (None for other triggers)
    watchdog: "WatchdogTrip | None" = None
    fastest_n_s: float = 0.0  # the fastest ramp the trial commanded (the course before the trigger)

    @property
    def f0(self) -> float:
        return self.at_trigger.force_n


@dataclass
class WatchdogTrip:
    """A watchdog trial's trip, timed from the last heartbeat the controller acknowledged.

    The beat restarted the watchdog somewhere between its send and its acknowledgement
    (midpoint ± half the round trip); the trip lies between the last status read that did
    not show WATCHDOG_TRIPPED (from its send) and the first that did (to its reply). The
    release requirements count from this measured trip: a watchdog that trips late is
    WD-TIME's finding, never the release's."""

    beat_ns: int
    beat_half_s: float  # wall
    trip_ns: int | None  # None: never reported within the wait
    trip_half_s: float  # wall
    reads: int

    def delay_table_s(self, k: float) -> float:
        return float("inf") if self.trip_ns is None else (self.trip_ns - self.beat_ns) / 1e9 * k


def time_watchdog_trip(bench, last_ack_ns: int, wait_table_s: float, rtt_s: float | None = None) -> WatchdogTrip:
    """Status reads back to back until the controller reports the watchdog trip (or the
    wait ends): the trip bracketed by the last read without it and the first with it
    (`verification.status_watch`); shown by the first read, it came after the beat.
    `rtt_s`: the last beat's write round trip when the suite sent that beat itself
    (default: the heartbeat keeper's last)."""
    rtt = bench.keeper.last_rtt_s if rtt_s is None else rtt_s
    beat_ns = last_ack_ns - int(rtt / 2 * 1e9)
    deadline = last_ack_ns + int(wait_table_s / bench.k * 1e9)
    watch = StatusWatch(bench.ctrl, "watchdog_tripped")
    watch.until(deadline)
    b = watch.bracket()
    if not b.seen:
        return WatchdogTrip(beat_ns, rtt / 2, None, 0.0, len(watch.reads))
    return WatchdogTrip(beat_ns, rtt / 2, b.midpoint_ns(beat_ns), b.half_width_s(beat_ns), len(watch.reads))


def _reach(bench, phase: str, force: float, up: float, down: float, start_ns: int, lead_s: float) -> str:
    """Wait until `lead_s` table seconds before the trigger point of the phase."""
    target = PHASE_OF[phase]
    if phase == "ramp_up":
        trigger_at = 0.6 * force / up
        bench.wait(lambda s: bench.table_s(start_ns, s.host_ns) >= trigger_at - lead_s, trigger_at + 10, "mid-ramp")
        return bench.ctrl.status().phase.name
    st = bench.wait(lambda s: s.phase is target, 60, f"phase {target.name}")
    entered = st.host_ns
    if phase == "ramp_to_rest":
        delay = 0.25 * (force / 2) / down  # a quarter of the way down to the rest force
    else:
        delay = IN_PHASE_S
    bench.wait(lambda s: bench.table_s(entered, s.host_ns) >= delay - lead_s, delay + 10, f"inside {target.name}")
    return bench.ctrl.status().phase.name


def run_trial(bench, spec, trigger: str, phase: str, force: float, index: int) -> Trial:
    up, down, hold, rest = trial_rates(spec, trigger, phase, force)
    bench.configure(force, up, down, intermittent=True, rest_n=force / 2, hold_s=hold, rest_s=rest)
    wd = spec.plan.watchdog_s
    holder: list = []
    with bench.capture(holder):
        start_ns = bench.ctrl.start()
        watchdog = None
        if trigger == "watchdog":
            seen = _reach(bench, phase, force, up, down, start_ns, lead_s=wd)
            last_beat = bench.keeper.pause()
            # a late watchdog is WD-TIME's finding: wait for it well past its limit
            wd_limit = spec.requirement(WATCHDOG_REQUIREMENT).limits(watchdog=wd)[1] or wd
            watchdog = time_watchdog_trip(bench, last_beat, 2 * wd_limit + 1.0)
            if watchdog.trip_ns is not None:  # the release counts from the trip as it came
                trigger_ns, half_width = watchdog.trip_ns, watchdog.trip_half_s
            else:  # never tripped: the release it owed counts from when the trip was due
                trigger_ns = watchdog.beat_ns + int(wd / bench.k * 1e9)
                half_width = watchdog.beat_half_s + 1e-3 / bench.k
        else:
            seen = _reach(bench, phase, force, up, down, start_ns, lead_s=0.0)
            if trigger == "estop_coil":
                trigger_ns, half_width = bench.coil_trigger(bench.ctrl.emergency_stop)
            else:
                trigger_ns, half_width = bench.relay(RELAY[trigger], True)
        # a defective table may never release: that is a measurement, not an error
        limit = spec.requirement("ER-RESIDUAL").limits(residual=bench.residual_n, force=force)[1] or 3.0
        _, released = bench.poll_until(bench.released, 2 * limit + 1.0)
        bench.sleep(AFTER_RELEASE_S)
    cap = bench.to_table(holder[0], trigger_ns)
    t, f = cap.t, cap.force
    at_trigger = trial_trigger_force(cap, half_width, bench.k)
    # remove the cause, then a restart must be refused until RESET
    if trigger in RELAY:
        bench.relay(RELAY[trigger], False)
    else:
        bench.keeper.resume()
    refused = bench.start_refused()
    if trigger == "mains_cut":
        try:
            bench.ctrl.enable()
            refused = False
        except CommandRefused:
            pass
    if not refused or not released:
        bench.make_safe()
    reset_ok, rig_failure = True, None
    try:
        bench.prepare()
    except (CommandRefused, BenchTimeout):  # the table's answer: it cannot be reset (ER-LATCH FAIL)
        reset_ok = False
    except RigError as exc:  # a link or a relay of the rig failed: judged nowhere, the test breaks off
        rig_failure = exc
    return Trial(index, trigger, phase, force, t, f, at_trigger, half_width, refused, reset_ok, seen, released, cap,
                 rig_failure, watchdog, max(up, down))


def stats_of(values: list[float], *, sd: bool = False) -> dict:
    """The spread of one quantity over a trigger's trials. `sd`: with the sample standard
    deviation of the finite values too (ISO 13855 practice: min, max, mean and SD of a
    repeated stop); off for the traction release, whose record keeps its keys."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    out = {
        "trials": int(len(arr)),
        "max": float(np.max(arr)) if len(arr) else None,
        "min": float(np.min(arr)) if len(arr) else None,
        "mean": float(np.mean(finite)) if len(finite) else None,
        "p95": float(np.percentile(finite, 95)) if len(finite) else None,
        "never_reached": int(np.sum(~np.isfinite(arr))),
    }
    if sd:
        out["sd"] = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return out


def trigger_too_loose(half_width_s: float, k: float) -> str:
    """Why a trial is repeated ('' when it is not): its trigger instant known worse than
    MAX_TRIGGER_HALF_WIDTH_S — a scheduling hiccup of the host, not the table, would
    decide its verdict."""
    if half_width_s <= MAX_TRIGGER_HALF_WIDTH_S:
        return ""
    return f"trigger instant known to ±{half_width_s * k * 1e3:.1f} ms table time"


def with_attempts(run_once, repeat_reason, on_repeat, attempts: int = ATTEMPTS):
    """A trial run up to `attempts` times while `repeat_reason(trial)` names a reason to
    repeat it (told to `on_repeat(reason)`); the last attempt is kept whatever it says —
    its own preconditions then make it N/A with that reason."""
    for attempt in range(attempts):
        trial = run_once()
        reason = repeat_reason(trial)
        if not reason or attempt == attempts - 1:
            return trial
        on_repeat(reason)
    raise ValueError(f"attempts must be at least 1, not {attempts}")


def worst_of_trials(trigger: str, req, ms: list[Measurement], quantity: str | None = None, *,
                    sd: bool = False) -> Measurement:
    """One requirement's (and quantity's) verdict over a trigger's trials: the worst trial
    that could be judged, with the spread of all of them (`stats_of`); every trial N/A
    makes the summary N/A, saying why the first was."""
    judged = [m for m in ms if m.verdict is not Verdict.NOT_APPLICABLE]
    if not judged:
        first = ms[0].not_applicable if ms else "no trial ran"
        summary = Measurement(f"{trigger}: worst of {len(ms)} trials", req, None, ms[0].unit if ms else "",
                              quantity=quantity,
                              conditions={"trigger": trigger, "trials": len(ms), "not_applicable": len(ms)},
                              preconditions=[Precondition("at least one trial could be judged", False,
                                                          f"{len(ms)} of {len(ms)} not applicable; the first: {first}")])
    elif req.decision_rule == "boolean":
        worst = min(judged, key=lambda m: bool(m.value))
        summary = Measurement(f"{trigger}: worst of {len(judged)} trials", req, bool(worst.value), quantity=quantity,
                              conditions={"trigger": trigger, "trials": len(judged),
                                          "not_applicable": len(ms) - len(judged),
                                          "failed": sum(1 for m in judged if not m.value)})
    else:
        worst = min(judged, key=lambda m: (m.verdict is Verdict.PASS, m.margin))
        summary = Measurement(f"{trigger}: worst of {len(judged)} trials", req, worst.value, worst.unit, worst.lower,
                              worst.upper, worst.budget, quantity=quantity,
                              conditions={"trigger": trigger, "worst_trial": worst.conditions,
                                          "not_applicable": len(ms) - len(judged),
                                          **stats_of([float(m.value) for m in judged], sd=sd)},
                              preconditions=worst.preconditions)
    summary.conditions["summary"] = True
    return summary


def first_trigger_kept(bench, recorder, req, settled=lambda st: True) -> None:
    """FAULT_CODE names the first trigger until RESET (TCM-1, and FDC-1 as TCM-1): an
    e-stop, then the patient switch pressed while it is latched, must still read e-stop —
    what stopped the table is what the operator and the service log are told. RESET (the
    switch let go, no force) then clears it. `settled(status)`: what else the protocol
    shows once the stop is over (TCM-1: PHASE back to IDLE)."""
    bench.ctrl.emergency_stop()
    st1, _ = bench.poll_until(lambda s: int(s.fault_code) != 0 and settled(s), 2.0)
    codes = type(st1.fault_code)  # the protocol's own FAULT_CODE enumeration
    first = Precondition("the ESTOP coil latched FAULT_CODE 2 (e-stop)",
                         st1.estop_latched and st1.fault_code is codes.ESTOP,
                         f"ESTOP_LATCHED={st1.estop_latched}, FAULT_CODE {st1.fault_code.name}")
    bench.relay(StimulusCoil.PATIENT_SWITCH, True)
    try:
        st2, pressed = bench.poll_until(lambda s: s.patient_switch_pressed, 1.0)
        second = Precondition("the controller shows the patient switch pressed (the second trigger)", pressed,
                              f"PATIENT_SWITCH_PRESSED={st2.patient_switch_pressed}")
        recorder.record(Measurement("FAULT_CODE keeps the first trigger (e-stop) after a second (patient switch)", req,
                                    st2.fault_code is codes.ESTOP, preconditions=[first, second],
                                    conditions={"first": "ESTOP", "second": "PATIENT_SWITCH",
                                                "fault_code": st2.fault_code.name}))
    finally:
        bench.relay(StimulusCoil.PATIENT_SWITCH, False)
    err = refusal_of(bench.ctrl.reset)
    st3 = bench.ctrl.status()
    accepted = Precondition("RESET accepted (the switch let go, no force)", err is None,
                            "accepted" if err is None else f"refused ({err})")
    recorder.record(Measurement("FAULT_CODE cleared by RESET", req, int(st3.fault_code) == 0,
                                preconditions=[first, accepted], conditions={"fault_code": st3.fault_code.name}))


def watchdog_measurement(spec, bench, trial: Trial, name: str, cond: dict) -> Measurement:
    """WD-TIME of one watchdog trial: from the last acknowledged beat to the trip."""
    req = spec.requirement(WATCHDOG_REQUIREMENT)
    wd = spec.plan.watchdog_s
    lo, hi = req.limits(watchdog=wd)
    w = trial.watchdog
    return Measurement(name, req, w.delay_table_s(bench.k), "s", lo, hi,
                       [UncertaintyTerm.rectangular("last heartbeat's instant (write round trip) × K", w.beat_half_s * bench.k),
                        UncertaintyTerm.rectangular("trip instant (between two status reads) × K", w.trip_half_s * bench.k)],
                       conditions={**cond, "watchdog_s": wd, "status_reads": w.reads,
                                   "tripped": w.trip_ns is not None})


