"""The caudal section's two position axes, in closed form: planned segments, not steps.

Why closed form: a position-controlled drive with a trapezoidal profile, an emergency
deceleration and a brake moves in pieces of constant acceleration, so the angle at any
instant is a quadratic of time inside its piece. Planning the pieces when a move or a
stop begins, and evaluating them when someone looks, makes the section cost nothing per
table second whatever the time scale K, lands every phase end and every trigger at its
exact instant (no 1 ms grid), and keeps the past for the inclinometer (`angles_at` of
past table times) as a short list of pieces.

One axis is a list of `Segment`s; each holds from its start until the next one starts
(the last one for ever). A plan may reach into the future; a new plan at instant t
drops whatever was planned after t and continues from the state at t. Angles are the
section's *true* angles in degrees (the controller's encoders are its own business).
"""

from __future__ import annotations

import bisect
import enum
import math
from dataclasses import dataclass

import numpy as np

#: Angles closer than this (degrees) count as equal: float pieces need not land exactly.
ANGLE_EPS = 1e-9


class Motion(enum.IntEnum):
    """Who moves the section in a segment (what BRAKE_ENGAGED and the obstruction watch read)."""

    HELD = 0  # at rest on the brake (a worn brake may let it creep)
    MOVE = 1  # a commanded move of the drive (a cycle's move, a return, a back-off)
    DRIVE_STOP = 2  # the drive's emergency deceleration
    BRAKE_STOP = 3  # the brake alone stopping it (power loss, de-energised while moving)


@dataclass(frozen=True)
class Segment:
    t0: float
    p0: float
    v0: float
    a: float
    motion: Motion

    def at(self, t: float) -> tuple[float, float]:
        tau = t - self.t0
        return self.p0 + self.v0 * tau + 0.5 * self.a * tau * tau, self.v0 + self.a * tau


def trapezoid(t: float, p: float, v: float, target: float, accel: float, speed: float,
              creep: float = 0.0) -> list[Segment]:
    """The pieces of a move from (p, v) at t to rest exactly at `target`: accelerate (or
    slow) at `accel` to at most `speed`, cruise, decelerate at `accel`; triangular when too
    short to reach `speed`; a section already heading away (or too fast to stop in time)
    first stops at `accel`. The last piece is the rest at the target, on the brake (a worn
    one lets it creep at `creep` °/s)."""
    out: list[Segment] = []
    while True:
        d = target - p
        if abs(d) <= ANGLE_EPS and v == 0.0:
            out.append(Segment(t, target, creep, 0.0, Motion.HELD))
            return out
        s = 1.0 if d > 0 else -1.0 if d < 0 else -math.copysign(1.0, v)
        u = s * v  # speed towards the target
        dist = abs(d)
        if u < 0 or u * u / (2 * accel) > dist + ANGLE_EPS:
            dur = abs(v) / accel
            out.append(Segment(t, p, v, -math.copysign(accel, v), Motion.MOVE))
            p, v, t = p + 0.5 * v * dur, 0.0, t + dur
            continue
        peak = min(speed, math.sqrt(accel * dist + 0.5 * u * u))
        d1 = abs(peak * peak - u * u) / (2 * accel)
        d3 = peak * peak / (2 * accel)
        cruise = max(0.0, dist - d1 - d3)
        pieces = ((abs(peak - u) / accel, s * (accel if peak >= u else -accel)),
                  (cruise / peak if peak > 0 else 0.0, 0.0),
                  (peak / accel, -s * accel))
        for dur, a in pieces:
            if dur > 0.0:
                out.append(Segment(t, p, v, a, Motion.MOVE))
                p, v, t = p + v * dur + 0.5 * a * dur * dur, v + a * dur, t + dur
        out.append(Segment(t, target, creep, 0.0, Motion.HELD))
        return out


class Axis:
    """One position axis: its planned pieces, past and future."""

    def __init__(self, angle: float = 0.0, t: float = 0.0) -> None:
        self.segs: list[Segment] = [Segment(t, angle, 0.0, 0.0, Motion.HELD)]
        self._starts: list[float] = [t]
        self._arrays: tuple[np.ndarray, ...] | None = None
        self.version = 0  # counts changes of the plan (what a cached crossing depends on)

    # -- reading --------------------------------------------------------------------------
    def _index(self, t: float) -> int:
        return max(0, bisect.bisect_right(self._starts, t) - 1)

    def segment_at(self, t: float) -> Segment:
        return self.segs[self._index(t)]

    def state(self, t: float) -> tuple[float, float]:
        """(angle, speed) at t."""
        return self.segment_at(t).at(t)

    def moving(self, t: float) -> bool:
        seg = self.segment_at(t)
        return seg.motion is not Motion.HELD or seg.v0 != 0.0

    def settled_at(self) -> float:
        """When the last planned motion ends (the start of the final piece)."""
        return self.segs[-1].t0

    def still_until(self, t: float) -> float:
        """Until when from t the angle stays as it is: t if it changes now, inf if the plan never moves it."""
        i = self._index(t)
        seg = self.segs[i]
        if seg.v0 != 0.0 or seg.a != 0.0:
            return t
        return self.segs[i + 1].t0 if i + 1 < len(self.segs) else math.inf

    def angles_at(self, times: np.ndarray) -> np.ndarray:
        if self._arrays is None:
            self._arrays = tuple(np.array([getattr(s, f) for s in self.segs], dtype=float)
                                 for f in ("t0", "p0", "v0", "a"))
        t0, p0, v0, a = self._arrays
        i = np.clip(np.searchsorted(t0, times, side="right") - 1, 0, len(t0) - 1)
        tau = times - t0[i]
        return p0[i] + v0[i] * tau + 0.5 * a[i] * tau * tau

    # -- planning -------------------------------------------------------------------------
    def _replace_from(self, t: float, pieces: list[Segment]) -> None:
        keep = bisect.bisect_left(self._starts, t)
        del self.segs[keep:]
        del self._starts[keep:]
        for seg in pieces:
            self.segs.append(seg)
            self._starts.append(seg.t0)
        self._arrays = None
        self.version += 1

    def move(self, t: float, target: float, accel: float, speed: float, creep: float = 0.0) -> float:
        """A move to `target` from the state at t; returns when it ends."""
        p, v = self.state(t)
        self._replace_from(t, trapezoid(t, p, v, target, accel, speed, creep))
        return self.settled_at()

    def stop(self, t: float, decel: float, motion: Motion, coast_s: float = 0.0, creep: float = 0.0) -> float:
        """Stop from the state at t: `coast_s` at the present speed (a reaction time, an
        overrun), then `decel` to rest; at rest the brake holds (a worn one lets the section
        creep at `creep` °/s). Returns when it is at rest."""
        p, v = self.state(t)
        pieces = []
        if v != 0.0:
            if coast_s > 0.0:
                pieces.append(Segment(t, p, v, 0.0, motion))
                p, t = p + v * coast_s, t + coast_s
            dur = abs(v) / decel
            pieces.append(Segment(t, p, v, -math.copysign(decel, v), motion))
            p, t = p + 0.5 * v * dur, t + dur
        pieces.append(Segment(t, p, creep, 0.0, Motion.HELD))
        self._replace_from(pieces[0].t0, pieces)
        return t

    def prune(self, before: float) -> None:
        """Forget pieces that ended before `before` (the inclinometer's history is finite)."""
        drop = max(0, bisect.bisect_right(self._starts, before) - 1)
        if drop > 64:
            del self.segs[:drop]
            del self._starts[:drop]
            self._arrays = None

    @property
    def oldest(self) -> float:
        return self._starts[0]

    # -- crossings ------------------------------------------------------------------------
    def first_above(self, level: float, t_from: float, motions: frozenset[Motion] | None = None,
                    rising: bool = False) -> float:
        """The first instant >= t_from at which the angle is above `level` (inside a
        piece of one of `motions`, all if None; only while rising if `rising`): inf if the
        plan never goes there."""
        for i in range(self._index(t_from), len(self.segs)):
            seg = self.segs[i]
            if motions is not None and seg.motion not in motions:
                continue
            lo = max(t_from, seg.t0)
            hi = self.segs[i + 1].t0 if i + 1 < len(self.segs) else math.inf
            if lo >= hi:
                continue
            t = _first_above_in(seg, lo, hi, level, rising)
            if t < math.inf:
                return t
        return math.inf

    def first_below(self, level: float, t_from: float) -> float:
        """As first_above, mirrored: the first instant the angle is below `level`."""
        mirrored = Axis.__new__(Axis)
        mirrored.segs = [Segment(s.t0, -s.p0, -s.v0, -s.a, s.motion) for s in self.segs[self._index(t_from):]]
        mirrored._starts = [s.t0 for s in mirrored.segs]
        mirrored._arrays = None
        return mirrored.first_above(-level, t_from)


def _first_above_in(seg: Segment, lo: float, hi: float, level: float, rising: bool) -> float:
    p, v = seg.at(lo)
    if p > level and (not rising or v > 0.0):
        return lo
    # roots of p0 + v0 tau + a/2 tau^2 = level with the angle rising through it
    c = seg.p0 - level
    roots: list[float] = []
    if seg.a == 0.0:
        if seg.v0 > 0.0:
            roots.append(-c / seg.v0)
    else:
        disc = seg.v0 * seg.v0 - 2.0 * seg.a * c
        if disc >= 0.0:
            r = math.sqrt(disc)
            roots += [(-seg.v0 - r) / seg.a, (-seg.v0 + r) / seg.a]
    for tau in sorted(roots):
        t = seg.t0 + tau
        if lo <= t < hi and seg.v0 + seg.a * tau > 0.0:
            return t
    return math.inf


class Section:
    """The caudal section: flexion (column 0) and lateral (column 1) axes."""

    AXES = ("flexion", "lateral")

    def __init__(self, start: tuple[float, float] = (0.0, 0.0)) -> None:
        self.axes = (Axis(start[0]), Axis(start[1]))

    def angles(self, t: float) -> tuple[float, float]:
        return self.axes[0].state(t)[0], self.axes[1].state(t)[0]

    def moving(self, t: float) -> bool:
        return any(axis.moving(t) for axis in self.axes)

    def still_until(self, t: float) -> float:
        """Until when from t neither axis moves (t: one moves now)."""
        return min(axis.still_until(t) for axis in self.axes)

    def motion(self, t: float) -> Motion:
        """The motion of the axis that is moving (HELD when none)."""
        for axis in self.axes:
            seg = axis.segment_at(t)
            if seg.motion is not Motion.HELD:
                return seg.motion
        return Motion.HELD

    def angles_at(self, times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=float)
        return np.stack([axis.angles_at(times) for axis in self.axes], axis=-1).reshape(len(times), 2)

    def stop(self, t: float, decel: float, motion: Motion, coast_s: float = 0.0,
             creep: tuple[float, float] = (0.0, 0.0)) -> float:
        return max(axis.stop(t, decel, motion, coast_s if axis.moving(t) else 0.0, c)
                   for axis, c in zip(self.axes, creep))

    def snapshot(self) -> tuple:
        return tuple((list(a.segs), list(a._starts)) for a in self.axes)

    def restore(self, snap: tuple) -> None:
        for axis, (segs, starts) in zip(self.axes, snap):
            axis.segs, axis._starts, axis._arrays = list(segs), list(starts), None
            axis.version += 1

    def prune(self, before: float) -> None:
        for axis in self.axes:
            axis.prune(before)

    @property
    def version(self) -> tuple[int, int]:
        return self.axes[0].version, self.axes[1].version

    @property
    def oldest(self) -> float:
        return max(axis.oldest for axis in self.axes)
