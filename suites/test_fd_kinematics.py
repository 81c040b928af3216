"""Flexion-distraction kinematics, measured with the reference inclinometer: each move's
end angle (FD-DEPTH), the rests at neutral (FD-NEUTRAL), the cruise speed as a fitted
slope and the largest speed over 0.2 s (FD-SPEED), pause and rest durations from the angle
trace's dwell boundaries (FD-TIMING), the cycle count or the treatment time (FD-CYCLES),
the table's encoder against the inclinometer at rest (FD-ENCODER), and the distraction
force held while the section moves, with the reference gauge (DX-STATIC).

One test per treatment of the plan (plan.treatments: both modes, lateral to both sides,
the slowest and the rated speed, dwells of 0 and of clinical length, ends by count and by
time, distraction low and high): the table runs the treatment once while the inclinometer
and the gauge are buffered, and every requirement is judged on that one trace. The
table's PHASE, CYCLE_COUNT and encoder are what is under test; they place nothing that is
judged, except where the angle trace cannot show a treatment's end (then the evidence
used is named in the measurement's conditions).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from drivers.fdc1 import Phase
from verification.budget import FD_AFTER_END_S, FD_BEFORE_START_S
from verification.fd_plan import plan_of
from verification.excursions import excursions
from verification.kinematics import Estimate, cruise_speed, cycle_count, peak_speed, segment
from verification.measurement import Measurement, Precondition, UncertaintyTerm, Verdict

pytestmark = [pytest.mark.protocol("FDC-1")]  # the flexion-distraction suites (fixtures/plugin.py select_protocol)

ENDED = "the treatment ran to its end by itself (idle, released and braked; no emergency stop or trip) within " \
        "its planned time × 1.5"
REQUIREMENTS = ("FD-DEPTH", "FD-NEUTRAL", "FD-SPEED", "FD-TIMING", "FD-CYCLES", "FD-ENCODER", "DX-STATIC")
#: table seconds recorded at rest before START and after the end (the first and last dwells)
BEFORE_START_S, AFTER_END_S = FD_BEFORE_START_S, FD_AFTER_END_S
#: a quantity with more values than this in one treatment records its worst, with the
#: statistics of all (a long session moves hundreds of times)
EACH_UP_TO = 12
#: the angle trace kept in the record: at most this many points (evenly strided)
SERIES_POINTS = 20000
#: the speed below which the section counts as still, as a share of the treatment's SPEED
#: (verification/kinematics.segment: well below the slowest speed, well above the noise) ...
STILL_SHARE = 0.3
#: ... and never above this (°/s): a short move at a high speed is triangular, and near
#: its turn the section is slower than a share of SPEED for long enough to look like a
#: dwell (3° at 20 °/s and ACCEL 40 °/s²: 0.27 s below 6 °/s), biasing the turn's angle
#: and showing a pause of 0 s as 0.27 s
STILL_MAX_DEG_S = 1.0
#: fewest encoder reads in a dwell's settled middle to compare with the inclinometer
MIN_ENCODER_READS = 3
#: table seconds of the encoder window kept clear of a dwell's corners
ENCODER_CLEAR_S = 0.1
#: fewest gauge samples in a move to judge the distraction held while it moves
MIN_FORCE_SAMPLES = 5
#: FDC-1 encoder register step (0.1°): rectangular over one count
ENCODER_STEP_DEG = 0.1


def smoothing_s(speed_deg_s: float) -> float:
    """The speed's smoothing half-window for a treatment's segmentation: short (corners
    resolved: a longer window stretches every dwell boundary outward, 0.15 s adds ~0.2 s
    to each pause at 10 °/s) except at the slowest speeds, where the still threshold is a
    few hundredths of a degree a second and the speed's noise must stay well below it."""
    return 0.05 if speed_deg_s >= 1.0 else 0.5


@dataclass
class TreatmentRun:
    """One treatment as the instruments saw it, in table seconds since the capture began."""

    cap: object  # verification.fd_bench.AngleCapture
    start_s: float  # the START write's acknowledgement
    start_half_width_s: float  # how well START's instant is known (write round trip × K)
    reads: np.ndarray  # controller status reads: t_s, flexion_deg, lateral_deg, phase
    plan: object  # verification.fd_plan.TreatmentPlan
    ended: bool
    annotations: dict = field(default_factory=dict)
    last: object = None  # the status that showed the table at rest after it (None: it never came to rest)

    @property
    def ran_to_its_end(self) -> Precondition:
        """The treatment ended by itself (idle, released and braked), not on an emergency stop
        or a trip, within its planned time × 1.5 (else nothing of its plan can be judged)."""
        st = self.last
        if st is None:
            return Precondition(ENDED, False, f"still running after {float(self.reads[-1, 0]) - self.start_s:.1f} s")
        if st.phase == Phase.EMERGENCY_STOPPED:
            return Precondition(ENDED, False, f"the table stopped on a latch, FAULT_CODE {st.fault_code.name}, "
                                              f"{float(self.reads[-1, 0]) - self.start_s:.1f} s after START")
        return Precondition(ENDED, True, f"ended {float(self.reads[-1, 0]) - self.start_s:.1f} s after START")

    def first_phase_s(self, phase: Phase) -> float | None:
        hit = np.flatnonzero(self.reads[:, 3] == int(phase))
        return float(self.reads[hit[0], 0]) if hit.size else None


def run_treatment(bench, spec, t) -> TreatmentRun:
    """Run the treatment once, recording the inclinometer, the gauge and the controller's
    status (its encoder and PHASE) throughout, from before START until after the end."""
    rate = spec.plan.distraction_rate_n_s
    plan = plan_of(t, rate, bench.identity.accel_deg_s2)
    reads: list[tuple[int, float, float, int]] = []
    running = [False]
    stopped: list = []

    def note(st) -> None:
        reads.append(((st.sent_ns + st.host_ns) // 2, st.flexion_deg, st.lateral_deg, int(st.phase)))

    def ended(st) -> bool:
        note(st)
        running[0] = running[0] or st.phase != Phase.IDLE
        if running[0] and st.released(bench.residual_n) and st.phase in (Phase.IDLE, Phase.EMERGENCY_STOPPED):
            stopped.append(st)  # at its end, or stopped by a latch (an over-travel trip): no use waiting on
            return True
        return False

    def only_note(st) -> bool:
        note(st)
        return False

    bench.configure(t.mode, t.depth_deg, t.speed_deg_s, pause_s=t.pause_s, rest_s=t.rest_s, cycles=t.cycles,
                    treatment_s=t.treatment_s, distraction_n=t.distraction_n, distraction_rate_n_s=rate)
    bench.context(requirement="FD-DEPTH", trigger=None, phase="treatment", force_n=t.distraction_n or None,
                  trial=1, trials=1)
    holder: list = []
    with bench.capture(holder):
        begin_ns = time.perf_counter_ns()
        bench.poll_until(only_note, BEFORE_START_S)
        sent = time.perf_counter_ns()
        ack = bench.ctrl.start()
        _, done = bench.poll_until(ended, plan.total_s * 1.5 + 10.0)
        bench.poll_until(only_note, AFTER_END_S)
    cap = holder[0]
    r = np.array(reads, dtype=float).reshape(-1, 4)
    r[:, 0] = (r[:, 0] - cap.ref_ns) / 1e9 * bench.k
    start_ns = (sent + ack) // 2
    return TreatmentRun(cap, bench.table_s(cap.ref_ns, start_ns), (ack - sent) / 2e9 * bench.k, r, plan, done,
                        {"capture_begin_s": bench.table_s(cap.ref_ns, begin_ns)}, stopped[0] if stopped else None)


def record_each_or_worst(recorder, ms: list[Measurement], what: str) -> None:
    """Every measurement of a quantity, or, beyond EACH_UP_TO, the worst with the statistics of all."""
    if len(ms) <= EACH_UP_TO:
        for m in ms:
            recorder.record(m)
        return
    judged = [m for m in ms if not m.not_applicable] or ms
    worst = min(judged, key=lambda m: (m.verdict is Verdict.PASS, m.margin))
    values = np.asarray([float(m.value) for m in judged if m.value is not None], dtype=float)
    stats = {"count": len(ms), "min": float(values.min()) if values.size else None,
             "max": float(values.max()) if values.size else None,
             "mean": float(values.mean()) if values.size else None}
    recorder.record(Measurement(f"{what}: worst of {len(ms)}", worst.requirement, worst.value, worst.unit,
                                worst.lower, worst.upper, worst.budget,
                                conditions={**worst.conditions, "summary": True, "worst": worst.name, **stats},
                                annotations=worst.annotations, preconditions=worst.preconditions,
                                quantity=worst.quantity, series=worst.series))


def _strided(n: int) -> slice:
    return slice(None, None, max(1, math.ceil(n / SERIES_POINTS)))


@pytest.mark.requirement(*REQUIREMENTS)
def test_treatment_kinematics(fd_bench, spec, recorder, fd_treatment):
    """One treatment of the plan, judged on its angle and force traces."""
    t = fd_treatment
    bench = fd_bench
    run = run_treatment(bench, spec, t)
    cap = run.cap
    ts, a = cap.t, cap.angle(t.mode)
    resolution = bench.tilt_config.resolution_deg
    still = min(STILL_SHARE * t.speed_deg_s, STILL_MAX_DEG_S)
    seg = segment(ts, a, still_deg_s=still, smooth_s=smoothing_s(t.speed_deg_s),
                  resolution_deg=resolution)
    # a dwell nearer the depth than neutral is at the depth: a rest that stops short of
    # neutral is still a rest (FD-NEUTRAL's finding), never taken for a move's end
    band = t.depth_deg / 2
    # the controlled end: at START + TREATMENT_TIME when the time ends it; moves and dwells
    # from then on are the end's, not the cycles'
    t_end = run.start_s + t.treatment_s if run.plan.ended_by != "count" and t.treatment_s else math.inf
    stride = _strided(len(ts))
    series = {"t_s": ts[stride], "angle_deg": a[stride]}
    cond = {"treatment": t.test_id, "mode": t.mode, "depth_deg": t.depth_deg, "speed_deg_s": t.speed_deg_s,
            "pause_s": t.pause_s, "rest_s": t.rest_s, "cycles": t.cycles, "treatment_s": t.treatment_s,
            "distraction_n": t.distraction_n, "profile": t.profile}
    ann = {"start_s": run.start_s, **({"end_s": t_end} if math.isfinite(t_end) else {})}
    ended = run.ran_to_its_end
    moved = Precondition("moves in the inclinometer trace", bool(seg.moves),
                         f"{len(seg.moves)} moves, {len(seg.dwells)} dwells")

    away = [abs(d.level.value) > band for d in seg.dwells]
    _depths(recorder, spec, bench, t, seg, away, t_end, cond, ann, series, [ended, moved])
    _neutral(recorder, spec, bench, t, seg, away, cond, [ended, moved])
    _speeds(recorder, spec, bench, t, seg, ts, a, cond, [ended, moved])
    _timing(recorder, spec, t, seg, away, t_end, cond, [ended, moved])
    _cycles(recorder, spec, t, run, seg, away, band, cond, [ended, moved])
    _encoder(recorder, spec, bench, t, run, seg, ts, a, cond, [ended])
    _distraction(recorder, spec, bench, t, run, seg, cond, [ended, moved])


def _target(t, level: float) -> float:
    """The set end angle of a move that ended at `level`: the depth, on its side."""
    return t.depth_deg if t.mode == "flexion" or level > 0 else -t.depth_deg


def _depths(recorder, spec, bench, t, seg, away, t_end, cond, ann, series, pre) -> None:
    req = spec.requirement("FD-DEPTH")
    lo, hi = req.limits(depth=t.depth_deg)
    ms = []
    for k, d in enumerate(seg.dwells):
        if not away[k] or d.start.value >= t_end:
            continue
        target = _target(t, d.level.value)
        side = "" if t.mode == "flexion" else (" left" if target > 0 else " right")
        ms.append(Measurement(
            f"end angle of move {len(ms) + 1}{side}", req, abs(d.level.value - target), "deg", lo, hi,
            bench.angle_terms(d.level),
            conditions={**cond, "set_deg": target, "measured_deg": d.level.value,
                        "dwell": "settled" if d.samples else "turn", "samples": d.samples},
            annotations={**ann, "at_s": d.start.value}, preconditions=pre))
    if not ms:
        ms.append(Measurement("end angles of the moves", req, None, "deg", lo, hi, conditions=cond, preconditions=[
            *pre, Precondition("a dwell at the depth in the inclinometer trace", False, "none found")]))
    ms[0].series = series
    record_each_or_worst(recorder, ms, "end angle")


def _neutral(recorder, spec, bench, t, seg, away, cond, pre) -> None:
    """Every return to neutral: each rest between moves and the dwell after the end."""
    req = spec.requirement("FD-NEUTRAL")
    lo, hi = req.limits()
    ms = []
    last = len(seg.dwells) - 1
    for k, d in enumerate(seg.dwells):
        if k == 0 or away[k]:
            continue
        what = "after the treatment" if k == last else f"rest {len(ms) + 1}"
        ms.append(Measurement(f"angle at neutral, {what}", req, abs(d.level.value), "deg", lo, hi,
                              bench.angle_terms(d.level),
                              conditions={**cond, "measured_deg": d.level.value, "samples": d.samples},
                              annotations={"at_s": d.start.value}, preconditions=pre))
    if not ms:
        ms.append(Measurement("angle at neutral", req, None, "deg", lo, hi, conditions=cond, preconditions=[
            *pre, Precondition("a dwell at neutral after a move", False, "none found")]))
    record_each_or_worst(recorder, ms, "angle at neutral")


def _speeds(recorder, spec, bench, t, seg, ts, a, cond, pre) -> None:
    req = spec.requirement("FD-SPEED")
    lo, hi = req.limits(speed=t.speed_deg_s, rated_speed=spec.rated_speed_deg_s)
    plo, phi = req.limits("above-rated", speed=t.speed_deg_s, rated_speed=spec.rated_speed_deg_s)
    cruise, peaks = [], []
    for k, move in enumerate(seg.moves):
        travel = abs(seg.dwells[k + 1].level.value - seg.dwells[k].level.value)
        where = {**cond, "move": k + 1, "direction": move.direction, "travel_deg": travel, "t0_s": move.t0,
                 "t1_s": move.t1}
        if move.cruised:
            v = cruise_speed(move)
            cruise.append(Measurement(f"cruise speed error of move {k + 1}", req, abs(abs(v.value) - t.speed_deg_s),
                                      "deg/s", lo, hi, bench.speed_terms(v, travel),
                                      conditions={**where, "cruise_deg_s": abs(v.value), "points": move.fit.n},
                                      preconditions=pre))
        p = peak_speed(ts, a, move)
        peaks.append(Measurement(f"largest speed of move {k + 1} over the rated speed", req,
                                 p.value - spec.rated_speed_deg_s, "deg/s", plo, phi, bench.speed_terms(p, travel),
                                 conditions={**where, "peak_deg_s": p.value}, preconditions=pre,
                                 quantity="above-rated"))
    if not cruise:
        cruise.append(Measurement("cruise speed error", req, None, "deg/s", lo, hi, conditions=cond, preconditions=[
            *pre, Precondition("a move that reached a constant speed (trapezoidal; a short move at a high speed is "
                               "triangular)", False, f"{len(seg.moves)} moves, none cruised")]))
    record_each_or_worst(recorder, cruise, "cruise speed error")
    if peaks:
        record_each_or_worst(recorder, peaks, "largest speed over the rated speed")


def _timing(recorder, spec, t, seg, away, t_end, cond, pre) -> None:
    """Each pause and rest between two moves, from the dwell boundaries, except one the
    treatment's end cut short."""
    req = spec.requirement("FD-TIMING")
    ms = []
    for k in range(1, len(seg.dwells) - 1):
        d = seg.dwells[k]
        if d.end.value >= t_end - 0.05:
            continue  # cut by the end of the treatment (or past it)
        word, set_s = ("pause", t.pause_s) if away[k] else ("rest", t.rest_s)
        lo, hi = req.limits(setting=set_s)
        dur = d.duration
        ms.append(Measurement(f"{word} {k} duration error", req, abs(dur.value - set_s), "s", lo, hi,
                              list(dur.budget) or [UncertaintyTerm("dwell boundaries", 0.0)],
                              conditions={**cond, "phase": word, "set_s": set_s, "measured_s": dur.value},
                              annotations={"start_s": d.start.value, "end_s": d.end.value}, preconditions=pre))
    if not ms:
        lo, hi = req.limits(setting=max(t.pause_s, t.rest_s))
        ms.append(Measurement("pause and rest durations", req, None, "s", lo, hi, conditions=cond, preconditions=[
            *pre, Precondition("a pause or a rest between two moves", False, f"{len(seg.dwells)} dwells in all")]))
    record_each_or_worst(recorder, ms, "dwell duration error")


def _end_instant(t, run, seg, away, band) -> tuple[Estimate | None, str]:
    """Where the controlled end began, and by what evidence: in the angle trace when it cut
    a pause at the depth short or turned a move out (the move back starts there); else the
    distraction gauge, where the end's ramp down begins; else the controller's first
    PHASE 6 report (the table's own word: the angle cannot show an end during a rest)."""
    if len(seg.dwells) >= 3 and away[-2]:
        d = seg.dwells[-2]
        cut = d.samples == 0 or d.duration.value < t.pause_s - 0.5
        if cut:
            return d.end, "inclinometer (the move back began)"
    if t.distraction_n:
        f = run.cap.force
        held = f.force >= 0.5 * t.distraction_n
        if held.any():
            last = int(np.flatnonzero(held)[-1])
            level = float(np.median(f.force[held]))
            drop = np.flatnonzero((f.t < f.t[last]) & (f.force >= level - max(0.05 * level, 2.0)))
            if drop.size:
                return (Estimate(float(f.t[drop[-1]]), (UncertaintyTerm.rectangular("gauge corner", 2 * f.period),)),
                        "reference gauge (the distraction's ramp down began)")
    at = run.first_phase_s(Phase.CONTROLLED_END)
    if at is not None:
        gaps = np.diff(run.reads[:, 0])
        return (Estimate(at, (UncertaintyTerm.rectangular("status poll interval", float(np.max(gaps)) if gaps.size
                                                          else 0.0),)), "controller PHASE 6 (first report)")
    return None, "none"


def _cycles(recorder, spec, t, run, seg, away, band, cond, pre) -> None:
    req = spec.requirement("FD-CYCLES")
    by = run.plan.ended_by
    decided = Precondition("one end planned to come first (CYCLES or TREATMENT_TIME, more than 2 s apart)",
                           by != "either", f"ended by {by}")
    if by in ("count", "either") and t.cycles:
        lo, hi = req.limits()
        count = cycle_count(excursions(run.cap.t, run.cap.angle(t.mode), band), t.mode, band)
        recorder.record(Measurement("cycles counted in the angle trace", req, float(abs(count - t.cycles)), "count",
                                    lo, hi, [], conditions={**cond, "counted": count, "set": t.cycles},
                                    preconditions=[*pre, decided]))
    if by in ("time", "either") and t.treatment_s:
        lo, hi = req.limits("time")
        end, evidence = _end_instant(t, run, seg, away, band)
        value = None if end is None else abs(end.value - run.start_s - t.treatment_s)
        budget = [*(end.budget if end is not None else ()),
                  UncertaintyTerm.rectangular("START instant (write round trip) × K", run.start_half_width_s)]
        recorder.record(Measurement(
            "treatment time error", req, value, "s", lo, hi, budget,
            conditions={**cond, "set_s": t.treatment_s, "evidence": evidence,
                        "measured_s": None if end is None else end.value - run.start_s},
            annotations={"start_s": run.start_s, **({"end_s": end.value} if end is not None else {})},
            preconditions=[*pre, decided, Precondition("the controlled end's start found", end is not None, evidence)],
            quantity="time"))


def _encoder(recorder, spec, bench, t, run, seg, ts, a, cond, pre) -> None:
    """The table's encoder against the inclinometer over the settled middle of each dwell."""
    req = spec.requirement("FD-ENCODER")
    lo, hi = req.limits()
    axis = 1 if t.mode == "flexion" else 2
    ms = []
    for k, d in enumerate(seg.dwells):
        if not d.samples:
            continue
        clear = max(ENCODER_CLEAR_S, 0.1 * d.duration.value)
        w0, w1 = d.start.value + clear, d.end.value - clear
        enc = run.reads[(run.reads[:, 0] >= w0) & (run.reads[:, 0] <= w1), axis]
        ref = a[(ts >= w0) & (ts <= w1)]
        if len(enc) < MIN_ENCODER_READS or len(ref) < 5:
            continue
        ref_mean = Estimate(float(np.mean(ref)), (UncertaintyTerm("inclinometer noise of the mean",
                                                                  float(np.std(ref, ddof=1)) / math.sqrt(len(ref))),))
        enc_mean = float(np.mean(enc))
        budget = [*bench.angle_terms(ref_mean),
                  UncertaintyTerm.rectangular("encoder register step (0.1°)", ENCODER_STEP_DEG / 2),
                  UncertaintyTerm("encoder noise of the mean", float(np.std(enc)) / math.sqrt(len(enc)))]
        ms.append(Measurement(f"encoder vs inclinometer at {ref_mean.value:+.1f}°", req,
                              abs(enc_mean - ref_mean.value), "deg", lo, hi, budget,
                              conditions={**cond, "encoder_deg": enc_mean, "inclinometer_deg": ref_mean.value,
                                          "reads": int(len(enc)), "dwell": k},
                              annotations={"start_s": w0, "end_s": w1}, preconditions=pre))
    if not ms:
        ms.append(Measurement("encoder vs inclinometer at rest", req, None, "deg", lo, hi, conditions=cond,
                              preconditions=[*pre, Precondition(
                                  f"a dwell with {MIN_ENCODER_READS} encoder reads in its settled middle", False,
                                  f"{len(run.reads)} reads, {len(seg.dwells)} dwells")]))
    record_each_or_worst(recorder, ms, "encoder vs inclinometer")


def _distraction(recorder, spec, bench, t, run, seg, cond, pre) -> None:
    """The distraction gauge's mean while each move is under way (DX-STATIC)."""
    if not t.distraction_n:
        return
    req = spec.requirement("DX-STATIC")
    lo, hi = req.limits(setting=t.distraction_n)
    f = run.cap.force
    ms = []
    for k, move in enumerate(seg.moves):
        sel = (f.t >= move.t0) & (f.t <= move.t1)
        samples = f.force[sel]
        if len(samples) < MIN_FORCE_SAMPLES:
            continue
        mean = float(np.mean(samples))
        ms.append(Measurement(f"distraction during move {k + 1}", req, abs(mean - t.distraction_n), "N", lo, hi,
                              bench.force_terms(samples),
                              conditions={**cond, "move": k + 1, "direction": move.direction, "mean_n": mean,
                                          "min_n": float(np.min(samples)), "max_n": float(np.max(samples)),
                                          "samples": int(len(samples))},
                              annotations={"start_s": move.t0, "end_s": move.t1}, preconditions=pre))
    if ms:
        stride = _strided(len(f.t))
        ms[0].series = {"t_s": f.t[stride], "force_n": f.force[stride]}
    else:
        ms.append(Measurement("distraction while the section moves", req, None, "N", lo, hi, conditions=cond,
                              preconditions=[*pre, Precondition(f"{MIN_FORCE_SAMPLES} gauge samples in a move", False,
                                                                f"{len(seg.moves)} moves, {len(f.t)} samples")]))
    record_each_or_worst(recorder, ms, "distraction while moving")
