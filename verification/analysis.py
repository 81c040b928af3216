"""Signal analysis of gauge traces (numpy): settled parts, ramp slopes, corners,
crossings and release shape. Pure functions of (t, force) arrays in table seconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def settled_slice(t: np.ndarray, f: np.ndarray, min_band_n: float = 0.3, min_samples: int = 20) -> slice:
    """The trailing part of a trace in which the force no longer moves.

    Walks back from the end while each sample stays inside a band around the tail's
    mean (4 sigma of the tail's own noise, at least `min_band_n`)."""
    n = len(f)
    if n < min_samples:
        return slice(0, n)
    tail = f[-max(min_samples, n // 10):]
    band = max(4.0 * float(np.std(tail)), min_band_n)
    centre = float(np.mean(tail))
    outside = np.nonzero(np.abs(f - centre) > band)[0]
    start = int(outside[-1]) + 1 if outside.size else 0
    if n - start < min_samples:
        start = n - min_samples
    return slice(start, n)


@dataclass(frozen=True)
class LineFit:
    slope: float
    intercept: float
    n: int
    residual_std: float
    slope_std: float

    def time_at(self, level: float) -> float:
        return (level - self.intercept) / self.slope if self.slope else float("nan")


def fit_line(t: np.ndarray, f: np.ndarray) -> LineFit:
    if len(t) < 3:
        return LineFit(float("nan"), float("nan"), len(t), float("nan"), float("nan"))
    A = np.column_stack([t, np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(A, f, rcond=None)
    resid = f - A @ coef
    dof = max(len(t) - 2, 1)
    s2 = float(resid @ resid) / dof
    sxx = float(np.sum((t - t.mean()) ** 2)) or float("inf")
    return LineFit(float(coef[0]), float(coef[1]), len(t), s2**0.5, (s2 / sxx) ** 0.5)


def ramp_fit(t: np.ndarray, f: np.ndarray, start_n: float, end_n: float, lo: float = 0.2, hi: float = 0.8) -> LineFit:
    """Least-squares slope over the linear part of a ramp (between lo and hi of the step)."""
    a, b = start_n + lo * (end_n - start_n), start_n + hi * (end_n - start_n)
    low, high = min(a, b), max(a, b)
    sel = (f >= low) & (f <= high)
    idx = np.nonzero(sel)[0]
    if idx.size < 3:
        return fit_line(t[:0], f[:0])
    # the first pass only: from entering the band until the force first leaves it on the
    # far side (noise near the entry edge makes gaps in `idx` that are not the pass's end)
    past = np.nonzero(f > high if end_n >= start_n else f < low)[0]
    past = past[past > idx[0]]
    run = idx[idx < past[0]] if past.size else idx
    return fit_line(t[run], f[run])


def first_time(t: np.ndarray, mask: np.ndarray) -> float:
    idx = np.nonzero(mask)[0]
    return float(t[idx[0]]) if idx.size else float("inf")


def crossing_below(t: np.ndarray, f: np.ndarray, level: float, after: float = 0.0) -> float:
    """First instant after `after` at which the force falls below `level` (interpolated)."""
    sel = np.nonzero((t >= after) & (f < level))[0]
    if not sel.size:
        return float("inf")
    i = int(sel[0])
    if i == 0 or t[i - 1] < after or f[i - 1] == f[i]:
        return float(t[i])
    frac = (f[i - 1] - level) / (f[i - 1] - f[i])
    return float(t[i - 1] + frac * (t[i] - t[i - 1]))


def crossing_above(t: np.ndarray, f: np.ndarray, level: float, after: float = float("-inf")) -> float:
    return crossing_below(t, -f, -level, after)


def smooth(f: np.ndarray, n: int) -> np.ndarray:
    """Moving average over n samples, centred; near the ends over the samples there are
    (a zero-padded average would pull the ends toward 0)."""
    if n <= 1 or len(f) < n:
        return f
    kernel = np.ones(n)
    return np.convolve(f, kernel, mode="same") / np.convolve(np.ones(len(f)), kernel, mode="same")


def last_rise_end_time(t: np.ndarray, f: np.ndarray, after: float, until: float, rise_tolerance_n: float,
                       smooth_s: float = 0.005, start_level: float | None = None,
                       min_noise_n: float = 0.1) -> float:
    """When the force last stopped rising after `after`: the end (top) of the last rise of
    more than `rise_tolerance_n` above the lowest force before it, on the force smoothed
    over `smooth_s`; 0 when it never rose by that much.

    A rise counts from the lowest force since the previous rise ended (or since `after`,
    where `start_level`, the force held at a trigger, is the first value): so a force that
    fell and held, or fell at once to a noisy floor, never rose; a ramp that went on
    pulling rose until it stopped; a treatment that went down to its rest force and pulled
    back up rose again. The top of a rise is the first instant the force came within its
    noise (3 σ about the smoothed force) of the rise's highest value, so noise on a flat
    top does not move it later."""
    sel = (t >= after) & (t <= until)
    if not sel.any():
        return float("inf")
    tt, raw = t[sel], f[sel]
    dt = float(np.median(np.diff(tt))) if len(tt) > 1 else 1.0
    n = max(1, int(round(smooth_s / dt)))
    ff = smooth(raw, n)
    interior = slice(n, len(raw) - n) if len(raw) > 2 * n + 2 else slice(None)
    noise = max(min_noise_n, 3.0 * float(np.std((raw - ff)[interior])) if len(raw) > 2 else 0.0)
    low = float(ff[0]) if start_level is None else min(float(start_level), float(ff[0]))
    rising, top, top_t, last_end = False, -np.inf, 0.0, 0.0
    for ti, v in zip(tt.tolist(), ff.tolist()):
        if not rising:
            low = min(low, v)
            if v > low + rise_tolerance_n:
                rising, top, top_t = True, v, ti
        elif v > top + noise:
            top, top_t = v, ti
        elif v < top - rise_tolerance_n:
            rising, low, last_end = False, v, top_t
    if rising:
        last_end = top_t
    return float(last_end - after) if last_end else 0.0


@dataclass(frozen=True)
class Plateau:
    level: float
    start: float  # corner with the ramp before (table s)
    end: float  # corner with the ramp after
    mean: float
    std: float
    n: int


def plateaus(t: np.ndarray, f: np.ndarray, levels: list[float], band: float, min_duration: float) -> list[Plateau]:
    """Flat parts of a trace near the given levels, with corners found by intersecting
    the neighbouring ramps' fitted lines with the plateau's mean (so the band width
    does not bias the measured durations)."""
    out: list[Plateau] = []
    near = np.zeros(len(f), dtype=int) - 1
    for k, level in enumerate(levels):
        near[np.abs(f - level) <= band] = k
    i, n = 0, len(f)
    while i < n:
        if near[i] < 0:
            i += 1
            continue
        k = near[i]
        j = i
        while j + 1 < n and near[j + 1] == k:
            j += 1
        if t[j] - t[i] >= min_duration:
            # level and noise from the middle half only: both ends of the in-band run are
            # still ramp (up to `band` off the level) and would bias the mean, so the corners
            core = f[i : j + 1][(j - i + 1) // 4 : (j - i + 1) - (j - i + 1) // 4]
            mean = float(np.mean(core))
            start = _corner(t, f, i, mean, before=True)
            end = _corner(t, f, j, mean, before=False)
            out.append(Plateau(levels[k], start, end, mean, float(np.std(core)), j - i + 1))
        i = j + 1
    return out


def flat_plateaus(t: np.ndarray, f: np.ndarray, max_slope_n_s: float, band: float, min_duration: float,
                  smooth_s: float = 0.1) -> list[Plateau]:
    """Flat parts of a trace at whatever level the table holds them: the stretches where
    the force's slope (over ±`smooth_s` of a moving average) stays below `max_slope_n_s`,
    widened to where the force stays within `band` of the stretch's own mean, with corners
    found as `plateaus` finds them. A level is judged afterwards against its setting, so
    finding the plateaus must not already assume the level is right (a rest 16 N low is a
    plateau, and IM-LEVELS' finding). `level` is the measured mean."""
    n = len(f)
    if n < 10:
        return []
    dt = sample_period(t)
    w = max(2, int(round(smooth_s / dt)))
    if n <= 2 * w + 1:
        return []
    fs = smooth(f, w)
    slope = np.full(n, np.inf)
    slope[w:-w] = (fs[2 * w:] - fs[:-2 * w]) / (t[2 * w:] - t[:-2 * w])
    flat = np.abs(slope) <= max_slope_n_s
    edges = np.flatnonzero(np.diff(np.r_[0, flat.astype(np.int8), 0]))
    out: list[Plateau] = []
    covered_to = -1
    for a, b in zip(edges[::2], edges[1::2]):  # flat on [a, b)
        if a <= covered_to or t[b - 1] - t[a] < 0.5 * min_duration:
            continue
        core = f[a:b][(b - a) // 4 : (b - a) - (b - a) // 4]
        mean = float(np.mean(core))
        inside = np.abs(fs - mean) <= band
        outside_before = np.flatnonzero(~inside[:a])
        outside_after = np.flatnonzero(~inside[b:])
        i = int(outside_before[-1]) + 1 if outside_before.size else 0
        j = int(b + outside_after[0]) - 1 if outside_after.size else n - 1
        covered_to = max(covered_to, j)
        if t[j] - t[i] < min_duration:
            continue
        core = f[i : j + 1][(j - i + 1) // 4 : (j - i + 1) - (j - i + 1) // 4]
        mean = float(np.mean(core))
        out.append(Plateau(mean, _corner(t, f, i, mean, before=True), _corner(t, f, j, mean, before=False), mean,
                           float(np.std(core)), j - i + 1))
    return out


def local_slope(t: np.ndarray, f: np.ndarray, smooth_s: float = 0.1) -> np.ndarray:
    """The force's slope over ±`smooth_s` of its moving average (inf where the window does not fit)."""
    n = len(f)
    slope = np.full(n, np.inf)
    if n < 10:
        return slope
    w = max(2, int(round(smooth_s / sample_period(t))))
    if n <= 2 * w + 1:
        return slope
    fs = smooth(f, w)
    slope[w:-w] = (fs[2 * w:] - fs[:-2 * w]) / (t[2 * w:] - t[:-2 * w])
    return slope


def final_descent_start(t: np.ndarray, f: np.ndarray, rate_n_s: float, floor_n: float,
                        lower_level_n: float | None = None) -> tuple[float, float]:
    """When the last descent of a trace to below `floor_n` began, and how well that is known
    (mid-point, half-width; table s). It began at the last instant the force was not
    falling at a ramp's pace (a hold, a rest, the top of a ramp up it interrupted). A
    treatment that ends during a ramp down to `lower_level_n` falls on at the same pace:
    then the release began somewhere between that corner and the force passing the lower
    level, and the half-width says so."""
    slope = local_slope(t, f)
    below = np.flatnonzero(f > floor_n)
    if not below.size:
        return float("nan"), 0.0
    last_high = int(below[-1])
    steady = np.flatnonzero(slope[: last_high + 1] > -0.5 * rate_n_s)
    if not steady.size:
        return float("nan"), 0.0
    corner = float(t[int(steady[-1])])
    before = slope[max(0, int(np.searchsorted(t, corner - 0.2)) - 1)]  # clear of the corner's own smoothing
    if lower_level_n is None or float(np.interp(corner, t, f)) <= lower_level_n or before > 0.5 * rate_n_s:
        return corner, 0.0  # at or below the lower level, or the top of a ramp up: no doubt
    # above the lower level: a ramp down to it runs at the release's pace, so the gauge
    # cannot tell where one took over from the other before the force passed that level
    passed = crossing_below(t, f, lower_level_n, corner)
    if not np.isfinite(passed):
        return corner, 0.0
    return (corner + passed) / 2, (passed - corner) / 2


def envelope(t: np.ndarray, f: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """A long trace cut to at most `max_points` for the record and its plots, keeping each
    bucket's lowest and highest sample (in time order): a plot of a 30-minute session
    still shows every excursion, which a plain every-n-th sample would skip."""
    if len(t) <= max_points:
        return t, f
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, len(t), buckets + 1).astype(int)
    keep = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        lo, hi = a + int(np.argmin(f[a:b])), a + int(np.argmax(f[a:b]))
        keep.extend(sorted({lo, hi}))
    idx = np.asarray(keep)
    return t[idx], f[idx]


def _corner(t, f, edge, level, before: bool, span_s: float = 0.6) -> float:
    """Intersect the ramp next to a plateau edge with the plateau level."""
    if before:
        sel = (t < t[edge]) & (t >= t[edge] - span_s)
    else:
        sel = (t > t[edge]) & (t <= t[edge] + span_s)
    idx = np.nonzero(sel)[0]
    if idx.size < 5:
        return float(t[edge])
    ff = f[idx]
    far = ff[np.argmax(np.abs(ff - level))]
    # the straight part of the ramp: between 20 % and 80 % of the way to the far end
    lo, hi = sorted((level + 0.2 * (far - level), level + 0.8 * (far - level)))
    keep = idx[(ff >= lo) & (ff <= hi)]
    if keep.size < 3 or abs(far - level) < 1e-6:
        return float(t[edge])
    line = fit_line(t[keep], f[keep])
    # refit on the samples that line puts in the straight part: chosen by time, not by the
    # noisy force, whose noise at the selection edges would flatten the slope
    pred = line.slope * t[idx] + line.intercept
    keep = idx[(pred >= lo) & (pred <= hi)]
    if keep.size >= 3:
        line = fit_line(t[keep], f[keep])
    corner = line.time_at(level)
    return float(corner) if np.isfinite(corner) else float(t[edge])


def fall_time(t: np.ndarray, f: np.ndarray, f0: float, after: float) -> float:
    """90 % -> 10 % fall time of a release that started at `after` from force f0."""
    t90 = crossing_below(t, f, 0.9 * f0, after)
    t10 = crossing_below(t, f, 0.1 * f0, after)
    return t10 - t90


def sample_period(t: np.ndarray) -> float:
    return float(np.median(np.diff(t))) if len(t) > 1 else float("nan")
