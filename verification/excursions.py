"""The angle trace as a cycle count reads it: each excursion of the section beyond a band
about neutral, as one dwell at its extreme angle, with neutral between two.

Why not the moves' segmentation (verification/kinematics.segment): lateral flexion with
REST_TIME 0 passes neutral on to the other side with a stop of milliseconds (2 × SPEED /
ACCEL: 5 ms at 0.1 °/s), which no speed threshold sees at a slow SPEED; the two moves
then read as one, from one side to the other, and the cycle would not count. An excursion
is read from the angle alone, whatever the speed. The count itself stays
verification/kinematics.cycle_count's rule: this only hands it the dwells.
"""

from __future__ import annotations

import numpy as np

from verification.kinematics import Dwell, Estimate, Segmentation

#: fewest samples of an excursion (or of neutral between two) that count: fewer is noise
#: at the band's edge, not the section going out and back
MIN_EXCURSION_SAMPLES = 3
#: the band's edge as a Schmitt trigger: an excursion begins beyond (1 + h) × band and ends
#: within (1 − h) × band. Why: at the slowest SPEED (0.1 °/s) the section spends seconds
#: within the inclinometer's noise of the edge, and a single threshold reads every crossing
#: of the noise as the section going out and back again
HYSTERESIS = 0.25


def excursions(t: np.ndarray, a: np.ndarray, band: float, min_samples: int = MIN_EXCURSION_SAMPLES) -> Segmentation:
    """Dwells in order: neutral (level 0) and each excursion beyond `band` (level: its
    extreme angle, signed), each from its first to its last sample."""
    t, a = np.asarray(t, float), np.asarray(a, float)
    seg = Segmentation()
    if not len(a):
        return seg
    beyond = _beyond(np.abs(a), band)
    edges = np.flatnonzero(np.diff(beyond.astype(int))) + 1
    bounds = [0, *edges.tolist(), len(a)]
    for i0, i1 in zip(bounds[:-1], bounds[1:]):
        if i1 - i0 < min_samples:
            continue
        part = a[i0:i1]
        level = float(part[np.argmax(np.abs(part))]) if beyond[i0] else 0.0
        here = Dwell(Estimate(float(t[i0])), Estimate(float(t[i1 - 1])), Estimate(level), i1 - i0)
        last = seg.dwells[-1] if seg.dwells else None
        if last is not None and np.sign(last.level.value) == np.sign(level):  # the same, across a dropped blip
            level = max(last.level.value, level, key=abs)
            here = Dwell(last.start, here.end, Estimate(level), last.samples + here.samples)
            seg.dwells[-1] = here
        else:
            seg.dwells.append(here)
    return seg


def _beyond(magnitude: np.ndarray, band: float) -> np.ndarray:
    """Each sample's side of the band with hysteresis (HYSTERESIS): between the two edges a
    sample keeps the side of the last sample outside them (neutral at the start)."""
    side = np.where(magnitude > band * (1 + HYSTERESIS), 1, np.where(magnitude < band * (1 - HYSTERESIS), 0, -1))
    decided = np.where(side >= 0, np.arange(len(side)), -1)
    last = np.maximum.accumulate(decided)
    return np.where(last >= 0, side[np.maximum(last, 0)], 0).astype(bool)


__all__ = ["HYSTERESIS", "MIN_EXCURSION_SAMPLES", "excursions"]
