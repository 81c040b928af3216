"""Angle-trace analysis for the flexion-distraction suites (numpy): a trace of the
inclinometer (t in table seconds, angle in degrees) split into moves and dwells, each
move's end angle, its cruise speed as a fitted slope, pause and rest durations, the cycle
count, an emergency stop's time to rest and travel, and the drift of a held section.

Why from the angle trace and not from the table's registers: the table's encoder, PHASE
and CYCLE_COUNT are what is under test (FD-ENCODER compares the encoder); the
inclinometer is the evidence. Each result is an `Estimate`: the value and the budget
terms this analysis contributes (the fit's scatter, the noise of a mean, the
instrument's quantisation, the sampling); the instrument's calibration and the trigger
instant's half-width are the suite's to add, as for the force gauges.

The shape the contract gives a move (FDC-1): from rest to rest along a trapezoid, a
constant ACCEL up to SPEED and down again. So the instant a move ends or begins is the
vertex of the parabola the angle follows while the section decelerates or accelerates;
a corner too short to fit (a slow move: ACCEL at 0.1 °/s lasts milliseconds) is where the
cruise line meets the dwell's level. A dwell's boundaries and so a pause's length are
these instants, not the moment a noisy speed crossed a threshold, whose bias would grow
with the trace's smoothing. Line fits and smoothing are verification/analysis.py's: an
angle is one more axis for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from verification.analysis import LineFit, fit_line, local_slope, sample_period, smooth
from verification.measurement import UncertaintyTerm

#: a move cruises where its speed is within this share of its top speed (the cruise is
#: fitted there, clear of the acceleration and the deceleration)
CRUISE_BAND = 0.9
#: a move too short to cruise (triangular) is fitted over its middle, this share by samples
CRUISE_SHARE = 0.5
#: the band of the cruise speed (as shares of it) in which a corner's samples lie on the
#: parabola: away from the cruise at one end and from the dwell at the other, so the
#: smoothing of the speed that selects them does not reach past either corner
CORNER_BAND = (0.25, 0.75)
#: fewest samples a corner's parabola is fitted to; fewer: the cruise line's crossing
MIN_CORNER_SAMPLES = 6
#: the window of the largest-speed check (FD-SPEED.above-rated: "over any 0.2 s")
PEAK_WINDOW_S = 0.2


# ---------------------------------------------------------------- a value with its budget

@dataclass(frozen=True)
class Estimate:
    """A value and the standard uncertainties this analysis contributes to it, as
    verification.measurement.Measurement takes them (`budget=list(e.budget)`)."""

    value: float
    budget: tuple[UncertaintyTerm, ...] = ()

    @property
    def standard(self) -> float:
        return math.sqrt(sum(t.standard ** 2 for t in self.budget))

    def expanded(self, k: float = 2.0) -> float:
        return k * self.standard

    def minus(self, other: "Estimate", name: str = "") -> "Estimate":
        """self − other with both budgets (independent terms), each term named by its side."""
        tag = f" ({name})" if name else ""
        return Estimate(self.value - other.value, (*self.budget, *(UncertaintyTerm(t.name + tag, t.standard)
                                                                   for t in other.budget)))


def quantisation(resolution_deg: float, name: str = "inclinometer resolution") -> tuple[UncertaintyTerm, ...]:
    """A reading's quantisation: rectangular over one count (none when the count is 0)."""
    return (UncertaintyTerm.rectangular(name, resolution_deg / 2),) if resolution_deg > 0 else ()


def noise_of(a: np.ndarray, smooth_n: int = 5) -> float:
    """The trace's sample-to-sample noise (σ), from its residual about a short moving
    average: a move's slope or a dwell's level is not noise."""
    if len(a) < 2 * smooth_n + 3:
        return float(np.std(a)) if len(a) > 1 else 0.0
    r = (a - smooth(a, smooth_n))[smooth_n:-smooth_n]
    return float(np.std(r)) * math.sqrt(smooth_n / max(smooth_n - 1, 1))


# ---------------------------------------------------------------- moves and dwells

@dataclass(frozen=True)
class Dwell:
    """The section at rest between two moves (a pause at the depth, a rest at neutral),
    from the instant the move before ended to the instant the next began. A move that
    turns or goes on without a dwell (PAUSE_TIME or REST_TIME 0) leaves one of length
    about 0 at the turn."""

    start: Estimate  # table s; the first dwell of a trace starts with the trace
    end: Estimate  # the last one ends with it
    level: Estimate  # the angle held: the mean over the settled dwell, or the turn's vertex
    samples: int  # samples the level is the mean of (0: a turn's vertex)

    @property
    def duration(self) -> Estimate:
        return self.end.minus(self.start, "start")


@dataclass(frozen=True)
class Move:
    """The section moving from one dwell to the next."""

    i0: int  # first and last sample index of the moving part (exclusive of the dwells)
    i1: int
    t0: float
    t1: float
    direction: int  # +1 towards larger angles, −1 towards smaller
    fit: LineFit  # the cruise line (slope: deg/s)
    cruised: bool  # False: the move never reached a constant speed (triangular): `fit` is over its middle


@dataclass
class Segmentation:
    dwells: list[Dwell] = field(default_factory=list)  # dwells[k] before moves[k], dwells[k+1] after it
    moves: list[Move] = field(default_factory=list)
    noise_deg: float = 0.0
    resolution_deg: float = 0.0

    def end_angle(self, k: int) -> Estimate:
        """Move k's end angle: the level of the dwell after it."""
        return self.dwells[k + 1].level


def speed_of(t: np.ndarray, a: np.ndarray, smooth_s: float) -> np.ndarray:
    """The angular speed (deg/s) over ±`smooth_s`; at the trace's ends, where the window
    does not fit, the nearest value inside (a trace starting or ending at rest is still)."""
    v = local_slope(t, a, smooth_s)
    ok = np.isfinite(v)
    if not ok.any():
        return np.zeros_like(a)
    idx = np.flatnonzero(ok)
    v[: idx[0]] = v[idx[0]]
    v[idx[-1] + 1:] = v[idx[-1]]
    return v


def segment(t: np.ndarray, a: np.ndarray, *, still_deg_s: float, smooth_s: float = 0.05, min_move_deg: float = 0.05,
            resolution_deg: float = 0.0) -> Segmentation:
    """Split a trace into dwells and moves. The section is still where its speed (over
    ±`smooth_s`) is below `still_deg_s` — choose it well below the slowest SPEED of the
    trace and well above the speed's noise; a stretch between two still ones that moves
    the section by less than `min_move_deg` (noise, a creep) belongs to the dwell. Every
    move has a dwell before and after it (a turn without a pause is one of about 0 s)."""
    t, a = np.asarray(t, float), np.asarray(a, float)
    if len(t) < 10:
        raise ValueError(f"segment: {len(t)} samples are too few for a trace of moves and dwells")
    v = speed_of(t, a, smooth_s)
    moving = np.abs(v) >= still_deg_s
    runs = _runs(moving)
    # the moving runs that move the section: each becomes a move, split where it stops for an instant
    moves_idx: list[tuple[int, int]] = []
    for i0, i1 in runs:
        if abs(float(a[i1]) - float(a[i0])) < min_move_deg and abs(float(np.ptp(a[i0:i1 + 1]))) < min_move_deg:
            continue
        moves_idx += _split_at_stops(v, i0, i1)
    noise = noise_of(a)
    seg = Segmentation(noise_deg=noise, resolution_deg=resolution_deg)
    fitted = [_cruise_fit(t, a, v, i0, i1, smooth_s) for i0, i1 in moves_idx]
    fits = [f for f, _ in fitted]
    dt = sample_period(t)
    # the dwells: before the first move, between two, after the last
    for k in range(len(moves_idx) + 1):
        before = moves_idx[k - 1] if k > 0 else None
        after = moves_idx[k] if k < len(moves_idx) else None
        lo = before[1] + 1 if before else 0
        hi = after[0] - 1 if after else len(t) - 1
        settled = _level(a, lo, hi, resolution_deg)
        level = settled or _turn_level(t, a, before, after, resolution_deg)  # too short to settle: a turn
        start = (_corner(t, a, v, before, fits[k - 1], level, end=True, dt=dt, smooth_s=smooth_s) if before
                 else Estimate(float(t[0])))
        end = (_corner(t, a, v, after, fits[k], level, end=False, dt=dt, smooth_s=smooth_s) if after
               else Estimate(float(t[-1])))
        if end.value < start.value:  # a turn: both corners are one instant
            mid = (start.value + end.value) / 2
            start, end = Estimate(mid, start.budget), Estimate(mid, end.budget)
        seg.dwells.append(Dwell(start, end, level, hi - lo + 1 if settled else 0))
    for (i0, i1), (fit, cruised) in zip(moves_idx, fitted):
        seg.moves.append(Move(i0, i1, float(t[i0]), float(t[i1]), 1 if a[i1] >= a[i0] else -1, fit, cruised))
    return seg


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def _split_at_stops(v: np.ndarray, i0: int, i1: int) -> list[tuple[int, int]]:
    """A moving run in which the section stops for an instant without the speed showing
    it still (a pause or a rest of 0 s: a turn at the depth, or lateral flexion passing
    neutral on to the other side): split where the speed dips below CORNER_BAND's lower
    share of the run's top speed and rises again — inside one trapezoidal move it never
    does, only at its two ends."""
    speeds = np.abs(v[i0:i1 + 1])
    top = float(np.percentile(speeds, 90))
    cuts = []
    for lo, hi in _runs(speeds < CORNER_BAND[0] * top):
        if lo == 0 or hi == len(speeds) - 1:  # the run's own start or end
            continue
        cuts.append(i0 + lo + int(np.argmin(speeds[lo:hi + 1])))
    out, start = [], i0
    for c in cuts:
        out.append((start, c - 1))
        start = c + 1
    out.append((start, i1))
    return [(p, q) for p, q in out if q > p]


def _cruise_fit(t, a, v, i0, i1, smooth_s) -> tuple[LineFit, bool]:
    """The cruise line of a move and whether the move reached a cruise: fitted over the
    samples between the first and the last at which the speed is within CRUISE_BAND of
    the move's top speed, each end moved inward by the speed's smoothing reach (so no
    sample of the acceleration or the deceleration bends the slope). A move too short to
    cruise (triangular) is fitted over its middle CRUISE_SHARE, and says so."""
    speeds = np.abs(v[i0:i1 + 1])
    top = float(np.percentile(speeds, 90))
    inside = np.flatnonzero(speeds >= CRUISE_BAND * top) + i0
    reach = int(math.ceil(2 * smooth_s / sample_period(t)))
    if inside.size and inside[-1] - inside[0] - 2 * reach >= 4:
        lo, hi = int(inside[0]) + reach, int(inside[-1]) - reach
        return fit_line(t[lo:hi + 1], a[lo:hi + 1]), True
    n = i1 - i0 + 1
    cut = int(round(n * (1 - CRUISE_SHARE) / 2))
    lo, hi = (i0 + cut, i1 - cut) if n - 2 * cut >= 3 else (i0, i1)
    return fit_line(t[lo:hi + 1], a[lo:hi + 1]), False


def _level(a, lo, hi, resolution) -> Estimate | None:
    """A dwell's level: the mean over its settled middle (its first and last tenth, and
    at least 3 samples at each end, left out: the corners' smoothing). None: too short."""
    n = hi - lo + 1
    trim = max(3, n // 10)
    if n - 2 * trim < 5:
        return None
    part = a[lo + trim:hi - trim + 1]
    sd = float(np.std(part, ddof=1))
    return Estimate(float(np.mean(part)), (UncertaintyTerm("noise of the mean", sd / math.sqrt(len(part))),
                                          *quantisation(resolution)))


def _turn_level(t, a, before, after, resolution) -> Estimate:
    """The angle at a turn without a dwell: the extreme of the parabola through the
    samples about it (the mean of the few still samples when there are none to fit)."""
    lo = before[1] - 3 if before else after[0] - 3
    hi = after[0] + 3 if after else before[1] + 3
    lo, hi = max(lo, 0), min(hi, len(t) - 1)
    seg_t, seg_a = t[lo:hi + 1], a[lo:hi + 1]
    if len(seg_t) >= MIN_CORNER_SAMPLES:
        p, cov = np.polyfit(seg_t - seg_t.mean(), seg_a, 2, cov=True)
        if p[0] != 0:
            tv = -p[1] / (2 * p[0])
            if seg_t.min() - seg_t.mean() <= tv <= seg_t.max() - seg_t.mean():
                value = float(np.polyval(p, tv))
                return Estimate(value, (UncertaintyTerm("fit of the turn", float(np.sqrt(max(cov[2, 2], 0.0)))),
                                        *quantisation(resolution)))
    return Estimate(float(np.mean(seg_a)), (UncertaintyTerm("noise of the mean", float(np.std(seg_a))),
                                            *quantisation(resolution)))


def _corner(t, a, v, move, fit: LineFit, level: Estimate | None, *, end: bool, dt: float, smooth_s: float) -> Estimate:
    """The instant a move ends (end=True) or begins, from the corner's samples (those
    whose speed lies in CORNER_BAND of the cruise). Two shapes can explain them: the
    parabola of a deceleration (or acceleration) the samples resolve — its vertex is the
    instant — or a kink, a corner shorter than the speed's smoothing (a slow move: ACCEL
    at 0.1 °/s lasts milliseconds), where the instant is the cruise line's crossing of the
    dwell's level. A corner's samples that span less than the smoothing's reach (2 ×
    `smooth_s`) show the smoothing, not the section: a kink. Else the one whose residuals
    are smaller decides; the kink has no free parameter, so it wins when it explains the
    samples as well."""
    i0, i1 = move
    cruise = abs(fit.slope) if np.isfinite(fit.slope) else float(np.max(np.abs(v[i0:i1 + 1])))
    lo_v, hi_v = CORNER_BAND[0] * cruise, CORNER_BAND[1] * cruise
    half = (i1 - i0 + 1) // 2
    span = np.arange(i0 + half, i1 + 1) if end else np.arange(i0, i0 + half + 1)
    idx = span[(np.abs(v[span]) >= lo_v) & (np.abs(v[span]) <= hi_v)]
    kink = _kink(t, fit, level, (t[i0] + t[i1]) / 2, dt)
    if idx.size >= MIN_CORNER_SAMPLES:
        tt, aa = t[idx], a[idx]
        centre = float(tt.mean())
        p, cov = np.polyfit(tt - centre, aa, 2, cov=True)
        sse_parabola = float(np.sum((np.polyval(p, tt - centre) - aa) ** 2)) / max(idx.size - 3, 1)
        if kink is not None and tt.max() - tt.min() <= 2 * smooth_s:
            return kink
        if kink is not None:
            before = tt < kink.value if end else tt >= kink.value
            shape = np.where(before, fit.slope * tt + fit.intercept, level.value)
            if float(np.sum((shape - aa) ** 2)) / idx.size <= sse_parabola:
                return kink
        if p[0] != 0:
            tv = -p[1] / (2 * p[0])
            # var(−b/2c) by its gradient: ∂/∂c = b/(2c²), ∂/∂b = −1/(2c)
            g = np.array([p[1] / (2 * p[0] ** 2), -1 / (2 * p[0]), 0.0])
            sd = float(np.sqrt(max(g @ cov @ g, 0.0)))
            if abs(tv) < 10 * (tt.max() - tt.min() + dt):  # a vertex near the corner, not a flat fit's
                return Estimate(centre + float(tv), (UncertaintyTerm("fit of the corner", sd),))
    if kink is not None:
        return kink
    edge = i1 if end else i0
    return Estimate(float(t[edge]), (UncertaintyTerm.rectangular("sampling (still threshold)", 2 * dt),))


def _kink(t, fit: LineFit, level: Estimate | None, fit_centre: float, dt: float) -> Estimate | None:
    """Where the cruise line meets the dwell's level, and how well: the level's and the
    line's uncertainty there (the line's grows away from its centre), over the speed;
    a corner shorter than a sample period is within half of one either way."""
    if level is None or not np.isfinite(fit.slope) or fit.slope == 0:
        return None
    crossing = fit.time_at(level.value)
    if not np.isfinite(crossing):
        return None
    line_sd = math.hypot(fit.residual_std / math.sqrt(max(fit.n, 1)), fit.slope_std * (crossing - fit_centre))
    return Estimate(float(crossing), (UncertaintyTerm("cruise line and level at the crossing",
                                                      math.hypot(level.standard, line_sd) / abs(fit.slope)),
                                      UncertaintyTerm.rectangular("sampling", dt / 2)))


# ---------------------------------------------------------------- per move

def cruise_speed(move: Move) -> Estimate:
    """The cruise speed (deg/s, signed by direction): the least-squares slope over the
    constant-speed middle of the move (`Move.cruised`; else over its middle), with the
    slope's standard error (the trace's noise and quantisation are in the fit's residuals)."""
    f = move.fit
    return Estimate(f.slope, (UncertaintyTerm("slope fit (standard error)", f.slope_std),))


def peak_speed(t: np.ndarray, a: np.ndarray, move: Move, window_s: float = PEAK_WINDOW_S) -> Estimate:
    """The largest |speed| of a move over any `window_s`: the slope of a line fitted to
    each window's samples (cumulative sums, one pass), with that window's standard error.
    An overshoot after the acceleration shows here and not in the cruise slope."""
    t, a = np.asarray(t, float)[move.i0:move.i1 + 1], np.asarray(a, float)[move.i0:move.i1 + 1]
    dt = sample_period(t)
    w = max(3, int(round(window_s / dt)) + 1)
    if len(t) < w:
        f = fit_line(t, a)
        return Estimate(abs(f.slope), (UncertaintyTerm("slope fit (standard error)", f.slope_std),))
    c = t - t[0]
    S = lambda x: np.concatenate([[0.0], np.cumsum(x)])  # noqa: E731 — windowed sums by differences
    st, sa, stt, sta, saa = S(c), S(a), S(c * c), S(c * a), S(a * a)
    win = lambda s: s[w:] - s[:-w]  # noqa: E731
    n, Tt, A, TT, TA, AA = w, win(st), win(sa), win(stt), win(sta), win(saa)
    sxx = TT - Tt * Tt / n
    sxy = TA - Tt * A / n
    slope = sxy / sxx
    syy = AA - A * A / n
    resid = np.maximum(syy - slope * sxy, 0.0) / max(n - 2, 1)
    k = int(np.argmax(np.abs(slope)))
    return Estimate(float(abs(slope[k])), (UncertaintyTerm("slope fit (standard error)",
                                                           float(np.sqrt(resid[k] / sxx[k]))),))


def dwell_durations(seg: Segmentation, neutral_band_deg: float = 0.5) -> list[tuple[str, Estimate]]:
    """("pause" | "rest", duration) of each dwell between two moves, in order: a rest is a
    dwell within `neutral_band_deg` of 0, a pause one away from it (at the depth). The
    dwells before the first move and after the last are the trace's, not the treatment's."""
    out = []
    for d in seg.dwells[1:-1]:
        out.append(("rest" if abs(d.level.value) <= neutral_band_deg else "pause", d.duration))
    return out


def cycle_count(seg: Segmentation, mode: str, neutral_band_deg: float = 0.5) -> int:
    """Cycles completed in a trace (FDC-1 "Treatment"): in flexion each excursion from
    neutral to a depth and back; in lateral flexion one to the left (+) and then one to
    the right (−), both sides one cycle. An excursion ends on reaching neutral again."""
    excursions = []  # the sign of each completed excursion
    away = 0
    for d in seg.dwells:
        level = d.level.value
        if abs(level) > neutral_band_deg:
            away = away or (1 if level > 0 else -1)
        elif away:
            excursions.append(away)
            away = 0
    if mode == "flexion":
        return len(excursions)
    count, left = 0, False
    for side in excursions:
        if side > 0:
            left = True
        elif left:
            count, left = count + 1, False
    return count


# ---------------------------------------------------------------- an emergency stop

def angle_at(t: np.ndarray, a: np.ndarray, instant: float, span_s: float = 0.05, resolution_deg: float = 0.0,
             half_width_s: float = 0.0) -> Estimate:
    """The angle at an instant (a trigger): a line through the samples of the `span_s`
    before it, evaluated there — not a mean over a window, which lags a moving section by
    half the window. `half_width_s`: how well the instant itself is known; the section's
    speed turns it into angle."""
    sel = (t >= instant - span_s) & (t <= instant)
    if sel.sum() < 3:
        sel = np.argsort(np.abs(t - instant))[:3]
    f = fit_line(t[sel], a[sel])
    value = f.slope * instant + f.intercept
    tm = float(np.mean(t[sel]))
    sxx = float(np.sum((t[sel] - tm) ** 2)) or float("inf")
    sd = f.residual_std * math.sqrt(1 / f.n + (instant - tm) ** 2 / sxx)
    terms = [UncertaintyTerm("line at the instant", sd), *quantisation(resolution_deg)]
    if half_width_s:
        terms.append(UncertaintyTerm.rectangular("the instant's half-width × speed", abs(f.slope) * half_width_s))
    return Estimate(float(value), tuple(terms))


def time_to_rest(t: np.ndarray, a: np.ndarray, trigger_s: float, at_rest_deg_s: float = 0.5,
                 smooth_s: float = 0.02, band_sigmas: float = 4.0, resolution_deg: float = 0.0) -> Estimate:
    """Time from the trigger until the section's speed stays below `at_rest_deg_s` (ES-TIME),
    bracketed from both sides. Late: the last crossing of that speed by the smoothed speed
    (the smoothing still averages the stop's last motion in). Early: the instant from which
    the angle stays within `band_sigmas` of its noise (two counts at least) of where it came to rest (a section
    decelerating at any plausible rate is inside that band before it is that slow: ½ v²/α
    at v = 0.5 °/s is a few 0.0001°). The value is the middle of the bracket, rectangular
    over it; and the sampling."""
    t, a = np.asarray(t, float), np.asarray(a, float)
    v = np.abs(speed_of(t, a, smooth_s))
    after = np.flatnonzero(t >= trigger_s)
    if not after.size:
        raise ValueError("time_to_rest: the trace ends before the trigger")
    fast = after[v[after] >= at_rest_deg_s]
    dt = sample_period(t)
    sampling = UncertaintyTerm.rectangular("sampling", dt / 2)
    if not fast.size:
        return Estimate(0.0, (sampling,))
    i = int(fast[-1])
    if i + 1 >= len(t):
        return Estimate(float("inf"), (sampling,))  # still moving when the trace ends
    frac = (v[i] - at_rest_deg_s) / (v[i] - v[i + 1]) if v[i] != v[i + 1] else 0.0
    late = float(t[i] + frac * (t[i + 1] - t[i]))
    reach = 2 * smooth_s
    settled = (t >= late + reach) & (t <= late + reach + 0.2)
    if settled.sum() < 5:  # too little trace after the stop to bracket it: the late side alone
        return Estimate(late - trigger_s, (sampling, UncertaintyTerm.rectangular("speed smoothing", reach)))
    rest = float(np.mean(a[settled]))
    band = max(band_sigmas * float(np.std(a[settled])), 2 * resolution_deg)
    window = np.flatnonzero((t >= trigger_s) & (t <= late + reach))
    outside = window[np.abs(a[window] - rest) >= band]
    if outside.size and outside[-1] + 1 < len(t):  # the band's last entry, between two samples
        j = int(outside[-1])
        out_j, in_j = abs(a[j] - rest), abs(a[j + 1] - rest)
        early = float(t[j] + (out_j - band) / (out_j - in_j) * (t[j + 1] - t[j])) if out_j > in_j else float(t[j + 1])
    else:
        early = float(t[window[0]])
    early = min(early, late)
    return Estimate((early + late) / 2 - trigger_s,
                    (sampling, UncertaintyTerm.rectangular("at rest between the angle band and the speed", (late - early) / 2)))


def rest_angle(t: np.ndarray, a: np.ndarray, at_s: float, window_s: float = 0.2, resolution_deg: float = 0.0) -> Estimate:
    """The angle where the section came to rest: the mean over `window_s` from `at_s`."""
    sel = (t >= at_s) & (t <= at_s + window_s)
    if sel.sum() < 2:
        raise ValueError(f"rest_angle: fewer than 2 samples in the {window_s:g} s after {at_s:g} s")
    part = a[sel]
    return Estimate(float(np.mean(part)), (UncertaintyTerm("noise of the mean", float(np.std(part, ddof=1))
                                                           / math.sqrt(len(part))), *quantisation(resolution_deg)))


@dataclass(frozen=True)
class Stop:
    """An emergency stop read from the angle trace: time to rest and travel after the
    trigger (|angle at rest − angle at the trigger|), with the angles themselves."""

    time: Estimate
    travel: Estimate
    at_trigger: Estimate
    at_rest: Estimate


def stop(t: np.ndarray, a: np.ndarray, trigger_s: float, *, at_rest_deg_s: float = 0.5, smooth_s: float = 0.02,
         resolution_deg: float = 0.0, trigger_half_width_s: float = 0.0) -> Stop:
    """ES-TIME and ES-TRAVEL of one trial."""
    t, a = np.asarray(t, float), np.asarray(a, float)
    time = time_to_rest(t, a, trigger_s, at_rest_deg_s, smooth_s, resolution_deg=resolution_deg)
    before = angle_at(t, a, trigger_s, resolution_deg=resolution_deg, half_width_s=trigger_half_width_s)
    # at rest: from where the speed stayed low, past the smoothing's reach
    rested = rest_angle(t, a, trigger_s + time.value + smooth_s, resolution_deg=resolution_deg)
    d = rested.minus(before, "at the trigger")
    return Stop(time, Estimate(abs(d.value), d.budget), before, rested)


@dataclass(frozen=True)
class Drift:
    """A held section over a window: the largest excursion from where it stood at the
    window's start (ES-HOLD), and the fitted rate, which tells a creeping brake from noise."""

    excursion: Estimate
    rate: Estimate  # deg/s


def drift(t: np.ndarray, a: np.ndarray, start_s: float, window_s: float, *, reference_s: float = 0.2,
          smooth_s: float = 0.1, resolution_deg: float = 0.0) -> Drift:
    """The largest |angle − angle at the start| over [start_s, start_s + window_s], on the
    trace smoothed over `smooth_s` (a noise spike is not motion), the reference the mean of
    the first `reference_s`; and the slope of a line fitted over the window."""
    t, a = np.asarray(t, float), np.asarray(a, float)
    sel = (t >= start_s) & (t <= start_s + window_s)
    if sel.sum() < 10:
        raise ValueError(f"drift: fewer than 10 samples in the {window_s:g} s window from {start_s:g} s")
    tt, aa = t[sel], a[sel]
    ref = rest_angle(tt, aa, start_s, reference_s, resolution_deg)
    dt = sample_period(tt)
    n = max(1, int(round(smooth_s / dt)))
    sm = smooth(aa, n)
    k = int(np.argmax(np.abs(sm - ref.value)))
    noise = noise_of(aa)
    excursion = Estimate(float(abs(sm[k] - ref.value)),
                         (UncertaintyTerm("noise of the smoothed angle", noise / math.sqrt(n)),
                          *(UncertaintyTerm(f"{term.name} (reference)", term.standard) for term in ref.budget),
                          *quantisation(resolution_deg)))
    f = fit_line(tt, aa)
    return Drift(excursion, Estimate(f.slope, (UncertaintyTerm("slope fit (standard error)", f.slope_std),)))


__all__ = ["CRUISE_BAND", "CRUISE_SHARE", "Drift", "Dwell", "Estimate", "Move", "PEAK_WINDOW_S", "Segmentation", "Stop", "angle_at",
           "cruise_speed", "cycle_count", "drift", "dwell_durations", "noise_of", "peak_speed", "quantisation",
           "rest_angle", "segment", "speed_of", "stop", "time_to_rest"]
